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
