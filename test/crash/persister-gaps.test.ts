// The persister before a batch that would leave a hole in a thread's warm log,
// on Redis and Postgres: it fills the gap from the hot tier when the hot tier
// still has it, and when it does not, it raises the data-loss alarm (log,
// metric, /readyz's list) and holds that thread back: none of its events are
// committed or its entries acknowledged, while its partition's other threads go on.
import test from "ava";
import { pino } from "pino";
import { DataLossAlarm } from "../../server/observability/data-loss-alarm.js";
import { Metrics } from "../../server/observability/metrics.js";
import type { HotKeys } from "../../server/tiers/hot/redis/keys.js";
import { Persister } from "../../workers/persister/persister.js";
import { newEvent } from "../support/events.js";
import { connectRedis } from "../support/redis.js";
import { openRealTiers, type RealTiers } from "../support/tiers.js";
import { setTimeout as delay } from "node:timers/promises";

/** A persister in this process on the tiers, with an alarm of its own; stopped by the test's teardown. */
function runPersister(t: { teardown(fn: () => Promise<void>): void }, real: RealTiers) {
  const metrics = new Metrics({ dispatch: real.tiers.dispatch });
  const alarm = new DataLossAlarm(pino({ level: "silent" }), metrics);
  const stop = new AbortController();
  const running = new Persister({
    feeds: real.tiers.feeds,
    leases: real.tiers.leases,
    warm: real.tiers.warm,
    log: pino({ level: "silent" }),
    batchEvents: 100,
    batchWaitMs: 20,
    hotWindow: 1_000,
    leaseMs: 1_000,
    metrics,
    alarm,
  }).run(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running;
  });
  return { alarm, metrics };
}

async function newThread(real: RealTiers): Promise<string> {
  const threadId = real.tiers.hot.newThreadId();
  await real.tiers.hot.append({ tenantId: "acme", threadId, create: { metadata: {} }, events: [newEvent("thread.created")] });
  return threadId;
}

/** Real tiers of the test's own, a Redis connection to plant faults with, and a thread in them. */
async function threadOnRealTiers(t: { teardown(fn: () => Promise<void>): void }) {
  const real = await openRealTiers();
  const redis = await connectRedis();
  t.teardown(async () => {
    redis.destroy();
    await real.cleanup();
  });
  const threadId = await newThread(real);
  return { real, redis, threadId, keys: (real.tiers.hot as unknown as { keys: HotKeys }).keys };
}

const appendEvents = (real: RealTiers, threadId: string, n: number) =>
  real.tiers.hot.append({ tenantId: "acme", threadId, events: Array.from({ length: n }, () => newEvent()) });

async function lastPersisted(real: RealTiers, threadId: string, atLeast: number, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seq = (await real.tiers.warm.getThread(threadId))?.lastSeq ?? 0;
    if (seq >= atLeast || Date.now() > deadline) return seq;
    await delay(50);
  }
}

test("an entry acknowledged without being persisted leaves a gap that the persister fills from the hot tier", async (t) => {
  const { real, redis, threadId, keys } = await threadOnRealTiers(t);
  const log = keys.partitionLog(keys.partition(threadId));
  // The consumer group sees seq 1's entry, then seqs 2-4's, which is acknowledged unseen (as a lost read once did).
  await redis.xGroupCreate(log, "persister", "0", { MKSTREAM: true });
  await appendEvents(real, threadId, 3);
  const read = (await redis.xReadGroup("persister", "lost", { key: log, id: ">" }, { COUNT: 10 })) as { messages: { id: string }[] }[];
  const [, skipped] = read[0].messages;
  await redis.xAck(log, "persister", skipped.id);
  await redis.xClaim(log, "persister", "lost", 0, read[0].messages[0].id); // seq 1 stays pending for a dead consumer
  await appendEvents(real, threadId, 2); // seqs 5-6

  const { alarm } = runPersister(t, real);
  t.is(await lastPersisted(real, threadId, 6), 6);
  t.deepEqual((await real.tiers.warm.read(threadId, 0, 100)).map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
  t.deepEqual(alarm.holes, []);
});

test("seqs the hot tier lost before they were persisted: nothing of that thread is committed or acknowledged, and the alarm goes off", async (t) => {
  const { real, redis, threadId, keys } = await threadOnRealTiers(t);
  await appendEvents(real, threadId, 3);
  await appendEvents(real, threadId, 2);
  // Seqs 2-4 leave the hot stream before the persister reads them.
  await redis.xDel(keys.stream(threadId), ["2-0", "3-0", "4-0"]);

  const { alarm, metrics } = runPersister(t, real);
  const deadline = Date.now() + 15_000;
  while (alarm.holes.length === 0 && Date.now() < deadline) await delay(50);
  t.like(alarm.holes[0], { threadId, fromSeq: 2, toSeq: 4, foundBy: "persister" });
  const counted = await metrics.registry.getSingleMetric("eventide_data_loss_total")!.get();
  t.true(counted.values.some((v) => v.labels.found_by === "persister" && v.value >= 1));
  // Still refused after a few more tries: seq 1 went in with it or not at all, 5-6 never past the hole.
  await delay(500);
  t.true((await lastPersisted(real, threadId, 1, 0)) < 2, "nothing past the hole was committed");
  const pending = await redis.xPending(keys.partitionLog(keys.partition(threadId)), "persister");
  t.true(pending.pending >= 1, "the entries stay pending, never acknowledged");
});

test("a thread held back by a hole holds back only itself: the other threads of its partition are persisted, and its entries stay pending", async (t) => {
  const { real, redis, threadId, keys } = await threadOnRealTiers(t);
  // A neighbour in the same partition log, appended to before and after the broken thread's entries.
  let neighbour = await newThread(real);
  while (keys.partition(neighbour) !== keys.partition(threadId)) neighbour = await newThread(real);
  await appendEvents(real, threadId, 3);
  await appendEvents(real, neighbour, 2);
  await redis.xDel(keys.stream(threadId), ["2-0", "3-0"]);
  await appendEvents(real, threadId, 1);
  await appendEvents(real, neighbour, 3);

  const { alarm } = runPersister(t, real);
  t.is(await lastPersisted(real, neighbour, 6), 6, "the neighbour is persisted whole");
  t.deepEqual((await real.tiers.warm.read(neighbour, 0, 100)).map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
  t.like(alarm.holes.find((h) => h.threadId === threadId), { fromSeq: 2, toSeq: 3, foundBy: "persister" });
  t.true((await lastPersisted(real, threadId, 1, 0)) < 2, "nothing of the broken thread past its hole was committed");
  // Later appends to the neighbour keep flowing while the broken thread's entries wait.
  await appendEvents(real, neighbour, 4);
  t.is(await lastPersisted(real, neighbour, 10), 10);
  const log = keys.partitionLog(keys.partition(threadId));
  const pending = await redis.xPendingRange(log, "persister", "-", "+", 100);
  const named = await Promise.all(pending.map(async (p) => (await redis.xRange(log, p.id, p.id))?.[0]?.message.t));
  t.true(named.length >= 2, "the broken thread's entries are still pending");
  t.true(named.every((thread) => thread === threadId), "only the broken thread's entries are left unacknowledged");
});
