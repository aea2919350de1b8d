// End to end with the hot tier on a real local Redis Cluster (3 masters,
// 3 replicas): appends, live and stored tails, idempotent retries, lookups by
// id, deletion, and a turn run by the reference agent; the persister writes
// it all to Postgres; per-key limits counted in the Cluster.
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import type { TailEventsResponse } from "../../gen/eventide/v1/event_service_pb.js";
import { partitionOf } from "../../server/tiers/hot/partition.js";
import { connectCluster, type RedisClusterUnderTest, startRedisCluster } from "../support/redis-cluster.js";
import { RedisCallerLimits } from "../../server/limits/redis-caller-limits.js";
import type { Caller } from "../../server/auth.js";
import { pino } from "pino";
import { setTimeout as delay } from "node:timers/promises";
import { collectTail, startTestServer, type TestServer, waitForTurnStatus, waitPersisted } from "../support/server.js";

let cluster: RedisClusterUnderTest;
let server: TestServer;
test.before(async () => {
  cluster = await startRedisCluster();
  server = await startTestServer("redis-cluster", {
    REDIS_CLUSTER_NODES: cluster.seeds,
    // Enough partitions that threads land on all three masters.
    EVENTIDE_PARTITIONS: "16",
    EVENTIDE_ROLES: "server,persister,dispatcher,agent",
    EVENTIDE_AGENT_TOKEN_DELAY: "5ms",
  });
});
test.after.always(async () => {
  await server?.close();
  await cluster?.stop();
});

const seqsOf = (items: TailEventsResponse[]) =>
  items.flatMap((i) => (i.item.case === "event" ? [Number(i.item.value.seq)] : i.item.case === "events" ? i.item.value.events.map((e) => Number(e.seq)) : []));

test.serial("appends on threads of every master: live tails see 1..N in order, Postgres gets each once, lookups by id and retries work", async (t) => {
  const threads = await Promise.all(Array.from({ length: 8 }, async () => (await server.turns().createThread({})).thread!.threadId));
  const perThread = 60;
  const tails = threads.map((threadId) =>
    collectTail(
      (signal) => server.events().tailEvents({ threadId, afterSeq: 0n, follow: true }, { signal }),
      (items) => seqsOf(items).at(-1) === perThread + 1,
      45_000,
    ),
  );
  // Batches of three, with client ids on the last batch of each thread.
  for (let round = 0; round < perThread / 3; round++) {
    await Promise.all(
      threads.map((threadId) =>
        server.events().appendEvents({
          threadId,
          events: Array.from({ length: 3 }, (_, i) => ({
            type: "message.delta",
            payload: { round, i },
            eventId: round === perThread / 3 - 1 ? `c-${threadId}-${i}` : "",
          })),
        }),
      ),
    );
  }
  for (const [i, items] of (await Promise.all(tails)).entries()) {
    t.deepEqual(seqsOf(items), Array.from({ length: perThread + 1 }, (_, k) => k + 1), `thread ${i}: gapless, in order`);
  }
  for (const threadId of threads) await waitPersisted(server, threadId, perThread + 1);
  for (const threadId of threads) {
    const stored = await server.tiers.warm.read(threadId, 0, 1_000);
    t.deepEqual(stored.map((e) => e.seq), Array.from({ length: perThread + 1 }, (_, k) => k + 1));
  }
  // A retry with the same ids returns the original seqs; GetEvent finds them by id.
  const [first] = threads;
  const retry = await server.events().appendEvents({
    threadId: first,
    events: [0, 1, 2].map((i) => ({ type: "message.delta", payload: { round: perThread / 3 - 1, i }, eventId: `c-${first}-${i}` })),
  });
  t.deepEqual([retry.firstSeq, retry.lastSeq], [BigInt(perThread - 1), BigInt(perThread + 1)]);
  t.like((await server.events().getEvent({ eventId: `c-${first}-1` })).event, { threadId: first, seq: BigInt(perThread) });
  // Deletion erases the thread everywhere; its client ids are free again.
  t.true((await cluster.scanKeys(`*${first}*`)).length > 1);
  await server.turns().deleteThread({ threadId: first });
  const left = await cluster.scanKeys(`*${first}*`);
  t.is(left.length, 1, left.join(", "));
  t.true(left[0].endsWith(`:{${partitionOf(first, 16)}}:t:${first}:meta`), "only the tombstone is left");
  t.is(ConnectError.from(await t.throwsAsync(server.events().getEvent({ eventId: `c-${first}-1` }))).code, Code.NotFound);
  t.is(ConnectError.from(await t.throwsAsync(server.events().appendEvents({ threadId: first, events: [{ type: "custom" }] }))).code, Code.NotFound);
});

test.serial("a submitted turn runs on the reference agent: its reply streams to a tail, the turn completes, the idempotency key returns it again", async (t) => {
  const submitted = await server.turns().submitTurn({ input: { text: "hello cluster, echo this" }, idempotencyKey: "cluster-key-1" });
  const { turnId, threadId } = submitted.turn!;
  const tail = collectTail(
    (signal) => server.events().tailEvents({ threadId, afterSeq: 0n, follow: true }, { signal }),
    (items) => items.some((i) => i.item.case === "event" && i.item.value.type === "turn.completed"),
    30_000,
  );
  const done = await waitForTurnStatus(server, turnId, TurnStatus.COMPLETED, 30_000);
  t.is(done.attempt, 1);
  const items = await tail;
  const events = items.flatMap((i) => (i.item.case === "event" ? [i.item.value] : i.item.case === "events" ? i.item.value.events : []));
  t.deepEqual(events.map((e) => Number(e.seq)), events.map((_, k) => k + 1), "gapless");
  const types = events.map((e) => e.type);
  t.deepEqual(types.slice(0, 3), ["thread.created", "turn.submitted", "turn.started"]);
  t.true(types.filter((ty) => ty === "message.delta").length >= 3, types.join(", "));
  t.deepEqual(types.slice(-2), ["message.completed", "turn.completed"]);
  const again = await server.turns().submitTurn({ input: { text: "hello cluster, echo this" }, idempotencyKey: "cluster-key-1" });
  t.is(again.turn!.turnId, turnId);
});

test.serial("per-key limits count in the Cluster: two limiters share a key's rate and its stream slots", async (t) => {
  const redis = await connectCluster(cluster);
  t.teardown(() => redis.close());
  const prefix = `ettest-limits-${Date.now()}`;
  const settings = { requestsPerSecond: 3, burst: 1, maxStreamsPerKey: 2, maxAnonymousStreams: 10 };
  // Two servers' limiters on one Cluster.
  const [a, b] = [0, 1].map(() => new RedisCallerLimits({ client: redis.commands, prefix, settings, log: pino({ level: "silent" }) }));
  t.teardown(() => [a, b].forEach((l) => l.close()));
  const caller: Caller = { tenantId: "acme", role: "client", keyName: "acme/client#cluster" };
  // A window's 3 requests plus 1 of burst, across both; more are refused. A window starts at a key's first
  // request and lasts a second: a round slower than half of that is tried again with a fresh key.
  let outcomes: string[] = [];
  for (let round = 0; round < 10; round++) {
    const started = Date.now();
    const key = { ...caller, keyName: `${caller.keyName}-${round}` };
    outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? b : a).spendRequest(key).then(() => "ok", (err) => String(ConnectError.from(err).code))));
    if (Date.now() - started < 500) break;
  }
  t.is(outcomes.filter((o) => o === "ok").length, 4, JSON.stringify(outcomes));
  t.true(outcomes.filter((o) => o !== "ok").every((o) => o === String(Code.ResourceExhausted)));
  const release = await a.openStream(caller);
  await b.openStream(caller);
  await t.throwsAsync(a.openStream(caller), { message: /already has 2 open streams/ });
  release();
  await waitFor(async () => (await b.openStream(caller).then(() => true, () => false)), 5_000);
  t.pass();
});

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out");
    await delay(50);
  }
}
