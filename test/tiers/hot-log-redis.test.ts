import test from "ava";
import { ulid } from "ulid";
import { eventIdKey } from "../../server/tiers/hot/hot-log.js";
import { SingleNodeRedis } from "../../server/tiers/hot/redis/hot-redis.js";
import { RedisHotLog } from "../../server/tiers/hot/redis/redis-hot-log.js";
import { newEvent } from "../support/events.js";
import { connectRedis, testRedis } from "../support/redis.js";
import { hotLogContract } from "./hot-log.contract.js";

async function openRedisHot(): Promise<RedisHotLog> {
  const redis = await testRedis();
  const hot = await RedisHotLog.open({
    redis: new SingleNodeRedis(redis.client),
    prefix: redis.prefix,
    partitions: 4,
    idempotencyTtlSeconds: 60,
    followLive: true,
  });
  const close = hot.close.bind(hot);
  hot.close = async () => {
    await close();
    await redis.cleanup();
  };
  return hot;
}

hotLogContract(test, "redis", openRedisHot);

// Redis keeps what was written before an upgrade (the memory tier starts empty each time).
test("redis: index entries written before ids were per tenant: a bare turn entry answers for its tenant only; bare event-id fields go with their thread", async (t) => {
  const hot = await openRedisHot();
  const redis = await connectRedis();
  try {
    const threadId = hot.newThreadId();
    const turnId = ulid();
    const eventId = `old-${ulid()}`;
    const turn = { turnId, threadId, tenantId: "acme", status: "queued" as const, input: {}, error: "", attempt: 0, agentId: "",
      idempotencyKey: "", metadata: {}, createdAt: 0, updatedAt: 0 };
    await hot.append({
      tenantId: "acme",
      threadId,
      create: { metadata: {} },
      submit: { turn, idempotencyKey: "" },
      events: [newEvent("thread.created"), newEvent("turn.submitted", { turnId })],
    });
    await hot.append({ tenantId: "acme", threadId, events: [newEvent("custom", { eventId, clientSuppliedId: true })] });
    // Rewrite both index entries as the release before wrote them.
    const p = hot.keys.partition(threadId);
    await redis.hSet(hot.keys.turnIndex(p), turnId, threadId);
    await redis.hDel(hot.keys.eventIndex(p), eventIdKey("acme", eventId));
    await redis.hSet(hot.keys.eventIndex(p), eventId, `${threadId} 4`);

    t.like(await hot.getTurn(turnId, "acme"), { turnId, threadId });
    t.like(await hot.getTurn(turnId), { turnId, threadId });
    t.is(await hot.getTurn(turnId, "globex"), undefined);
    t.is(await hot.findEvent("acme", eventId), undefined, "a bare field is never looked up");
    await hot.deleteThread(threadId);
    t.is(await redis.hGet(hot.keys.eventIndex(p), eventId), null, "deleting the thread removed the bare field too");
  } finally {
    redis.destroy();
    await hot.close();
  }
});

// Two servers on one Redis: each delivers its own appends to its tails as they return, and the
// other's when its partition log reader sees them. Interleaved appends on one thread through
// both reach the tails of both as every seq once, in order, with no resync.
test("redis: two servers' interleaved appends on one thread reach the tails of both as every seq once, in order", async (t) => {
  const redis = await testRedis();
  const other = await connectRedis();
  const open = (client: typeof redis.client) =>
    RedisHotLog.open({ redis: new SingleNodeRedis(client), prefix: redis.prefix, partitions: 4, idempotencyTtlSeconds: 60, followLive: true });
  const servers = [await open(redis.client), await open(other)];
  t.teardown(async () => {
    for (const hot of servers) await hot.close();
    other.destroy();
    await redis.cleanup();
  });
  const threadId = servers[0].newThreadId();
  await servers[0].append({ tenantId: "acme", threadId, create: { metadata: {} }, events: [newEvent("thread.created")] });
  const seen = servers.map(() => [] as (number | "resync")[]);
  servers.forEach((hot, i) => hot.live.subscribe(threadId, (update) => seen[i].push(...(update === "resync" ? ["resync" as const] : update.map((e) => e.seq)))));
  const until = async (what: string, done: () => boolean) => {
    for (const deadline = Date.now() + 60_000; !done(); await new Promise((r) => setTimeout(r, 10))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    }
  };
  const append = (hot: RedisHotLog, n: number) => hot.append({ tenantId: "acme", threadId, events: Array.from({ length: n }, () => newEvent()) });

  // Once a server has delivered the thread's last seq, its own next append reaches its tails before the append returns.
  await append(servers[1], 2);
  await until("both servers' tails to have seq 3", () => seen.every((s) => s.at(-1) === 3));
  await append(servers[0], 1);
  t.is(seen[0].at(-1), 4, "the appending server delivered its own append at once");
  await until("the other server's tails to have seq 4", () => seen[1].at(-1) === 4);

  // Concurrent appends through both: each server gets the other's between its own.
  const rounds = 40;
  const results = await Promise.all(Array.from({ length: rounds }, (_, i) => append(servers[i % 2], 1 + (i % 3))));
  const last = Math.max(...results.map((r) => r.thread.lastSeq));
  const expected = Array.from({ length: last - 1 }, (_, i) => i + 2);
  await until("both servers' tails to reach the last seq", () => seen.every((s) => s.length >= expected.length || s.includes("resync")));
  for (const s of seen) t.deepEqual(s, expected);
});

// One server: every append its partition log reader sees is its own, and delivers its events as it
// returns. The reader waits for those in flight instead of racing them with a read of the stream.
test("redis: a server's reader reads back none of the events its own appends deliver", async (t) => {
  const redis = await testRedis();
  const hot = await RedisHotLog.open({ redis: new SingleNodeRedis(redis.client), prefix: redis.prefix, partitions: 4, idempotencyTtlSeconds: 60, followLive: true });
  t.teardown(async () => {
    await hot.close();
    await redis.cleanup();
  });
  let reads = 0;
  const xRange = redis.client.xRange.bind(redis.client);
  Object.assign(redis.client, {
    xRange: (...args: Parameters<typeof xRange>) => {
      reads++;
      return xRange(...args);
    },
  });
  const threadId = hot.newThreadId();
  await hot.append({ tenantId: "acme", threadId, create: { metadata: {} }, events: [newEvent("thread.created")] });
  const seen: (number | "resync")[] = [];
  hot.live.subscribe(threadId, (update) => seen.push(...(update === "resync" ? ["resync" as const] : update.map((e) => e.seq))));
  const until = async (what: string, done: () => boolean) => {
    for (const deadline = Date.now() + 60_000; !done(); await new Promise((r) => setTimeout(r, 10))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    }
  };
  // The first append after subscribing is read back (nothing delivered yet to follow on from).
  await hot.append({ tenantId: "acme", threadId, events: [newEvent()] });
  await until("seq 2", () => seen.includes(2));
  reads = 0;
  for (let round = 0; round < 5; round++) {
    await Promise.all(Array.from({ length: 20 }, () => hot.append({ tenantId: "acme", threadId, events: [newEvent()] })));
  }
  const last = 2 + 5 * 20;
  await until("the last seq", () => seen.includes(last) || seen.includes("resync"));
  // The reader has seen every entry once it has read past the last: an append through the same hot log waits behind it.
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(seen, Array.from({ length: last - 1 }, (_, i) => i + 2));
  t.is(reads, 0, "no event was read back from the thread's stream");
});
