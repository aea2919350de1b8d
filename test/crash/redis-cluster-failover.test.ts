// A Redis Cluster master SIGKILLed under load (appends on threads of every
// master, live tails on each): its replica takes over, the killed node comes
// back as a replica, and with EVENTIDE_REDIS_WAIT_REPLICAS=1 every append the
// server acknowledged, before the kill or after, is found at its seq; tails
// that resume from their last seq see 1..N with no gap and no duplicate; the
// persister writes each event to Postgres once.
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { setTimeout as delay } from "node:timers/promises";
import { HotKeys } from "../../server/tiers/hot/redis/keys.js";
import { type RedisClusterUnderTest, startRedisCluster } from "../support/redis-cluster.js";
import { startTestServer, type TestServer, waitPersisted } from "../support/server.js";

const threads = 9;
const partitions = 16;
/** Appends each thread gets once the cluster is whole again. */
const appendsAfterRecovery = 10;

let cluster: RedisClusterUnderTest;
let server: TestServer;
test.before(async () => {
  cluster = await startRedisCluster();
  server = await startTestServer("redis-cluster", {
    REDIS_CLUSTER_NODES: cluster.seeds,
    EVENTIDE_PARTITIONS: String(partitions),
    EVENTIDE_ROLES: "server,persister",
    EVENTIDE_REDIS_WAIT_REPLICAS: "1",
    EVENTIDE_REDIS_WAIT_TIMEOUT: "1s",
  });
});
test.after.always(async () => {
  await server?.close();
  await cluster?.stop();
});

/** A tail that resumes after its last seq whenever its stream fails; what it saw, in order. */
function resumingTail(threadId: string, signal: AbortSignal): { seen: { seq: number; eventId: string }[]; done: Promise<void> } {
  const seen: { seq: number; eventId: string }[] = [];
  const done = (async () => {
    while (!signal.aborted) {
      try {
        const after = BigInt(seen.at(-1)?.seq ?? 0);
        for await (const res of server.events().tailEvents({ threadId, afterSeq: after, follow: true }, { signal })) {
          const events = res.item.case === "event" ? [res.item.value] : res.item.case === "events" ? res.item.value.events : [];
          for (const e of events) seen.push({ seq: Number(e.seq), eventId: e.eventId });
        }
      } catch {
        if (!signal.aborted) await delay(100);
      }
    }
  })();
  return { seen, done };
}

test("a master killed mid-load: its replica takes over, every acknowledged append is found, tails resume with no gap", async (t) => {
  const ids = await Promise.all(Array.from({ length: threads }, async () => (await server.turns().createThread({})).thread!.threadId));
  t.timeout(150_000);
  // Only the hash tag of a partition's keys decides their slot; the prefix does not matter.
  const keys = new HotKeys("any", partitions);
  // Acknowledged appends per thread: seq → event id (thread.created is seq 1).
  const acked = new Map(ids.map((id) => [id, new Map<number, string>()]));
  const failures: string[] = [];
  let phase: "before" | "failing" | "recovered" = "before";
  const ackedAfterRecovery = new Map(ids.map((id) => [id, 0]));

  const writers = ids.map(async (threadId) => {
    for (let n = 0; ackedAfterRecovery.get(threadId)! < appendsAfterRecovery; n++) {
      const eventIds = [0, 1].map((i) => `${threadId}-${n}-${i}`);
      const startedIn = phase;
      // Retried with the same event ids until acknowledged: a retry never writes twice.
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await server.events().appendEvents({ threadId, events: eventIds.map((eventId) => ({ eventId, type: "custom", payload: { n } })) });
          res.events.forEach((e) => acked.get(threadId)!.set(Number(e.seq), e.eventId));
          if (startedIn === "recovered") ackedAfterRecovery.set(threadId, ackedAfterRecovery.get(threadId)! + 1);
          break;
        } catch (err) {
          const code = ConnectError.from(err).code;
          if (code !== Code.Unavailable || attempt > 400) {
            failures.push(`${threadId} append ${n}: ${String(err)}`);
            return;
          }
          await delay(50);
        }
      }
      await delay(5);
    }
  });
  const stopTails = new AbortController();
  const tails = new Map(ids.map((id) => [id, resumingTail(id, stopTails.signal)]));
  t.teardown(async () => {
    stopTails.abort();
    await Promise.all([...tails.values()].map((tail) => tail.done));
  });

  const total = () => [...acked.values()].reduce((n, m) => n + m.size, 0);
  while (total() < 150 && failures.length === 0) await delay(20);
  // The master of the first thread's partition.
  const victim = await cluster.shardOf(keys.partitionLog(keys.partition(ids[0])));
  const ackedBeforeKill = new Map(ids.map((id) => [id, new Map(acked.get(id)!)]));
  phase = "failing";
  await cluster.kill(victim.master);
  t.log(`killed master ${victim.master} (replica ${victim.replica}) after ${total()} acknowledged events`);
  // Its replica is promoted; the killed node then rejoins as a replica (until then, WAIT 1 cannot be met for its slots).
  const deadline = Date.now() + 30_000;
  while (!(await cluster.shards().catch(() => [])).some((s) => s.master === victim.replica)) {
    if (Date.now() > deadline) throw new Error("the replica was not promoted");
    await delay(100);
  }
  await cluster.restart(victim.master);
  await cluster.waitHealthy();
  phase = "recovered";
  const atRecovery = total();
  t.log(`replica ${victim.replica} promoted; the old master is back as its replica (${atRecovery} acknowledged events)`);
  await Promise.all(writers);
  t.log(`${total() - atRecovery} more acknowledged after the recovery`);
  for (const failure of failures.slice(0, 5)) t.log(failure);
  t.is(failures.length, 0, "every append was eventually acknowledged");

  for (const threadId of ids) {
    const want = acked.get(threadId)!;
    const last = Math.max(...want.keys());
    // Every acknowledged event is where its acknowledgement said, in the stitched log.
    const stored = new Map<number, string>();
    for await (const res of server.events().tailEvents({ threadId, afterSeq: 0n, follow: false })) {
      const events = res.item.case === "event" ? [res.item.value] : res.item.case === "events" ? res.item.value.events : [];
      for (const e of events) stored.set(Number(e.seq), e.eventId);
    }
    t.deepEqual([...stored.keys()], Array.from({ length: last }, (_, k) => k + 1), `${threadId}: 1..${last}`);
    for (const [seq, eventId] of want) t.is(stored.get(seq), eventId, `${threadId} seq ${seq}`);
    for (const [seq, eventId] of ackedBeforeKill.get(threadId)!) t.is(stored.get(seq), eventId, `${threadId} seq ${seq}, acknowledged before the kill`);
    // The live tail, resumed after every failure, saw the same log.
    const tail = tails.get(threadId)!;
    const tailDeadline = Date.now() + 30_000;
    while ((tail.seen.at(-1)?.seq ?? 0) < last && Date.now() < tailDeadline) await delay(50);
    t.deepEqual(
      tail.seen.map((e) => e.seq),
      Array.from({ length: last }, (_, k) => k + 1),
      `${threadId}: the tail saw 1..${last} once each`,
    );
    t.deepEqual(tail.seen.map((e) => e.eventId), [...stored.entries()].sort(([a], [b]) => a - b).map(([, id]) => id));
    await waitPersisted(server, threadId, last, 45_000);
    const warm = await server.tiers.warm.read(threadId, 0, 1_000);
    t.deepEqual(warm.map((e) => [e.seq, e.eventId]), [...stored.entries()].sort(([a], [b]) => a - b), `${threadId}: Postgres holds each once`);
  }
});
