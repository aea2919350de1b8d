// The hot tier can lose a thread (the embedded tier restarts empty; Redis can
// lose data): appends re-seed it from Postgres and the seqs go on, gapless.
import test from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectRedis } from "../support/redis.js";
import { startTestServer, waitPersisted } from "../support/server.js";

test("the embedded suite restarts on its data dir and threads go on where they stood", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "eventide-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const first = await startTestServer("memory", { EVENTIDE_DATA_DIR: dataDir });
  const { thread, turn } = await first.turns().submitTurn({ input: { text: "before" } });
  const threadId = thread!.threadId;
  const res = await first.events().appendEvents({ threadId, turnId: turn!.turnId, events: [{ type: "message.delta" }] });
  await waitPersisted(first, threadId, Number(res.lastSeq));
  await first.close();

  const second = await startTestServer("memory", { EVENTIDE_DATA_DIR: dataDir });
  t.teardown(() => second.close());
  t.is((await second.turns().getThread({ threadId })).thread!.lastSeq, 3n);
  const next = await second.events().appendEvents({ threadId, turnId: turn!.turnId, events: [{ type: "message.delta" }] });
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
