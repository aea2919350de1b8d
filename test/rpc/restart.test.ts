// The hot tier can lose a thread (the embedded tier restarts empty; Redis can
// lose data): appends re-seed it from Postgres and the seqs go on, gapless.
import test from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { LeaseSweeper } from "../../workers/dispatcher/lease-sweeper.js";
import { completeAtOnce, hold, startTestAgent } from "../support/agents.js";
import { connectRedis, deletePrefix } from "../support/redis.js";
import { startTestServer, waitPersisted } from "../support/server.js";

test("the embedded suite restarts on its data dir and threads go on where they stood", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "eventide-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const first = await startTestServer("memory", { EVENTIDE_DATA_DIR: dataDir });
  const { thread } = await first.turns().submitTurn({ input: { text: "before" } });
  const threadId = thread!.threadId;
  const res = await first.events().appendEvents({ threadId, events: [{ type: "message.delta" }] });
  await waitPersisted(first, threadId, Number(res.lastSeq));
  await first.close();

  const second = await startTestServer("memory", { EVENTIDE_DATA_DIR: dataDir });
  t.teardown(() => second.close());
  t.is((await second.turns().getThread({ threadId })).thread!.lastSeq, 3n);
  const next = await second.events().appendEvents({ threadId, events: [{ type: "message.delta" }] });
  t.is(next.firstSeq, 4n);
  const again = await second.turns().submitTurn({ threadId, input: { text: "after" } });
  t.is(again.seq, 5n);
  const all = await second.events().listEvents({ threadId });
  t.deepEqual(all.events.map((e) => Number(e.seq)), [1, 2, 3, 4, 5]);
});

test("a thread whose Redis keys were lost is re-seeded from Postgres", async (t) => {
  const server = await startTestServer("redis");
  t.teardown(() => server.close());
  const { thread } = await server.turns().submitTurn({ input: {} });
  const threadId = thread!.threadId;
  await waitPersisted(server, threadId, 2);
  const redis = await connectRedis();
  const hot = server.tiers.hot as unknown as { keys: { meta(id: string): string; stream(id: string): string; turns(id: string): string } };
  await redis.del([hot.keys.meta(threadId), hot.keys.stream(threadId), hot.keys.turns(threadId)]);
  redis.destroy();
  const res = await server.events().appendEvents({ threadId, events: [{ type: "custom" }] });
  t.is(res.firstSeq, 3n);
});

test("dispatch state lost with the hot tier is rebuilt from Postgres: queued turns run, a running one is retried", async (t) => {
  const server = await startTestServer("redis", { EVENTIDE_LEASE_SWEEP: "100ms", EVENTIDE_RETRY_BACKOFF: "50ms" });
  t.teardown(() => server.close());
  const holder = startTestAgent(server.transport("grpc"), "holder", hold);
  const first = await server.turns().submitTurn({ input: { n: 1 } });
  const threadId = first.thread!.threadId;
  const second = await server.turns().submitTurn({ threadId, input: { n: 2 } });
  await holder.waitForAssignments(1);
  // turn.started (seq 4) persisted: Postgres knows the first turn runs and the second waits.
  await waitPersisted(server, threadId, 4);
  // Everything this deployment keeps in Redis is gone (a FLUSHALL scoped to its prefix:
  // other tests share this Redis).
  const keys = (server.tiers.hot as unknown as { keys: { prefix: string } }).keys;
  await deletePrefix(keys.prefix);
  await holder.stop();
  t.is(await server.tiers.hot.getThread(threadId), undefined);

  const sweeper = new LeaseSweeper({ dispatch: server.core.dispatch, log: server.core.events, logger: pino({ level: "silent" }), intervalMs: 100, rebuildIntervalMs: 60_000 });
  t.is(await sweeper.rebuild(), 1);
  const worker = startTestAgent(server.transport("grpc"), "after-loss", completeAtOnce);
  t.teardown(() => worker.stop());
  await worker.waitForAssignments(2, 30_000);
  const turns = await Promise.all([first, second].map(async (s) => (await server.turns().getTurn({ turnId: s.turn!.turnId })).turn!));
  t.like(turns[0], { status: TurnStatus.COMPLETED, attempt: 2 });
  t.deepEqual(worker.assignments.map((a) => a.turn!.turnId), [first.turn!.turnId, second.turn!.turnId], "in submission order");
  const events = (await server.events().listEvents({ threadId, pageSize: 1000 })).events;
  t.deepEqual(events.map((e) => Number(e.seq)), events.map((_, i) => i + 1), "seqs go on where the log stood");
  t.true(events.some((e) => e.type === "turn.retrying" && e.turnId === first.turn!.turnId));
});
