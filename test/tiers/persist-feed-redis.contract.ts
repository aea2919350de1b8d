// The Redis persist feed (on one Redis or a Cluster), at the interleavings
// that once lost acknowledged events: a read ahead blocked on the partition
// logs when the lane's partitions change (a rebalance, or an adoption), then
// an append. The dropped read still receives that entry; it must be handed
// out next, never skipped for a later one.
import type { ExecutionContext, TestFn } from "ava";
import { setTimeout as delay } from "node:timers/promises";
import type { RedisClientType } from "redis";
import type { FeedBatch, HotLog } from "../../server/tiers/hot/hot-log.js";
import type { HotRedis } from "../../server/tiers/hot/redis/hot-redis.js";
import { HotKeys } from "../../server/tiers/hot/redis/keys.js";
import { RedisPersistFeed } from "../../server/tiers/hot/redis/redis-persist-feed.js";
import { newEvent } from "../support/events.js";
import { openRealTiers, type RealTiers } from "../support/tiers.js";

/** Commands the tests send around the feed (to look at or damage what it reads). */
export type InspectingCommands = Pick<RedisClientType, "xPending" | "xDel">;

export interface FeedBackend {
  /** Env that puts openRealTiers' hot tier on this Redis. */
  env(): Record<string, string>;
  /** The hot tier's connection, for the feed under test; `inspect` for the tests' own commands. */
  connect(): Promise<{ redis: HotRedis; inspect: InspectingCommands; close(): Promise<void> }>;
}

const consumer = "lane-under-test";
/** Long enough that the read ahead is still blocked when the partitions change. */
const blockMs = 1_500;

/**
 * A feed of its own on tiers of its own (key prefix): a read another test's
 * feed left blocked on the same logs would take entries meant for this one.
 */
async function newFeed(t: ExecutionContext, backend: FeedBackend): Promise<{ feed: RedisPersistFeed; keys: HotKeys; real: RealTiers; client: InspectingCommands }> {
  const real = await openRealTiers(backend.env());
  const connection = await backend.connect();
  const keys = new HotKeys(real.env.EVENTIDE_REDIS_PREFIX, Number(real.env.EVENTIDE_PARTITIONS));
  const feed = new RedisPersistFeed(connection.redis, keys);
  t.teardown(async () => {
    feed.close();
    await connection.close();
    await real.cleanup();
  });
  return { feed, keys, real, client: connection.inspect };
}

/** A new thread in partition `p` (thread ids are random; their partition is a hash). */
async function threadIn(hot: HotLog, keys: HotKeys, p: number, not?: number): Promise<string> {
  for (;;) {
    const threadId = hot.newThreadId();
    if (keys.partition(threadId) !== p && p >= 0) continue;
    if (keys.partition(threadId) === not) continue;
    await hot.append({ tenantId: "acme", threadId, create: { metadata: {} }, events: [newEvent("thread.created")] });
    return threadId;
  }
}

const seqsOf = (batch: FeedBatch, threadId: string) => batch.events.filter((e) => e.threadId === threadId).map((e) => e.seq);

export function persistFeedContract(test: TestFn, name: string, backend: FeedBackend) {
  for (const change of ["the lane's partitions change", "the lane adopts another partition"] as const) {
    test(`${name}: an entry received by a read ahead dropped when ${change} is handed out before later ones`, async (t) => {
      const { feed, keys, real, client } = await newFeed(t, backend);
      const { hot } = real.tiers;
      const threadId = await threadIn(hot, keys, 0);
      const other = await threadIn(hot, keys, -1, 0);
      const [p, q] = [0, keys.partition(other)];
      for (const part of [p, q]) await feed.adopt(part, consumer);
      const signal = new AbortController().signal;

      // Both threads' first entries, in one batch or (on a Cluster, where each partition is read on a
      // connection of its own and a batch takes the reads that answered first) in two.
      const firstSeqs: number[] = [];
      let otherSeen = false;
      for (let reads = 0; reads < 5 && !(firstSeqs.length > 0 && otherSeen); reads++) {
        const first = await feed.nextBatch([p, q], consumer, 100, blockMs, signal);
        firstSeqs.push(...seqsOf(first, threadId));
        otherSeen ||= seqsOf(first, other).length > 0;
        await feed.ack(first);
      }
      t.deepEqual(firstSeqs, [1]);
      // The feed now reads ahead, blocked on both logs. The lane's partitions change under it.
      const partitions = change === "the lane's partitions change" ? [p] : [p, q];
      if (change === "the lane adopts another partition") await Promise.race([feed.adopt((q + 1) % keys.partitions, consumer), delay(100)]);
      const second = feed.nextBatch(partitions, consumer, 100, blockMs, signal);
      await delay(100); // the new read is under way (before the fix: its blocking read queued behind the dropped one)
      await hot.append({ tenantId: "acme", threadId, events: [newEvent()] }); // seq 2: the dropped read receives it
      await delay(100);
      await hot.append({ tenantId: "acme", threadId, events: [newEvent()] }); // seq 3

      const handedOut: number[] = [];
      const batches = [await second];
      // A few batches are plenty (an empty one may come first): a skipped entry never comes at all.
      for (let reads = 0; handedOut.length < 2 && reads < 4; reads++) {
        const batch = batches.shift() ?? (await feed.nextBatch(partitions, consumer, 100, blockMs, signal));
        handedOut.push(...seqsOf(batch, threadId));
        if (batch.entries.size > 0) await feed.ack(batch);
      }
      t.deepEqual(handedOut, [2, 3], "in order, none skipped");
      // Nothing is left pending that was never handed out.
      const pending = await client.xPending(keys.partitionLog(p), "persister");
      t.is(pending.pending, 0);
    });
}

  test(`${name}: an entry whose events the stream no longer holds still names them (namedThrough), so it is never acknowledged silently`, async (t) => {
    const { feed, keys, real, client } = await newFeed(t, backend);
    const { hot } = real.tiers;
    const threadId = await threadIn(hot, keys, 1);
    await feed.adopt(1, consumer);
    await hot.append({ tenantId: "acme", threadId, events: [newEvent(), newEvent(), newEvent()] }); // seqs 2-4, one entry
    // The stream loses seqs 2-4 (as a trim below an unpersisted seq once did).
    await client.xDel(keys.stream(threadId), ["2-0", "3-0", "4-0"]);
    const batch = await feed.nextBatch([1], consumer, 100, 100, new AbortController().signal);
    t.deepEqual(seqsOf(batch, threadId), [1]);
    t.is(batch.namedThrough.get(threadId), 4);
    t.deepEqual(await feed.readRange(threadId, 2, 4), []);
    // The warm store refuses it: seqs 2-4 are neither persisted nor in the batch.
    const err = await t.throwsAsync(real.tiers.warm.persistBatch(batch.events, batch.namedThrough));
    t.regex(String(err), /seqs 2\.\.4/);
  });
}
