// The archiver as a child process, killed with SIGKILL while it uploads and
// commits: after a restart every seq is in exactly one place (an archive or a
// row), archives never overlap, and a tail still delivers 1..N once each.
// S3 going away makes it back off while Postgres keeps the rows.
import test from "ava";
import { newEvent } from "../support/events.js";
import { kill, spawnRole } from "../support/child.js";
import { s3Credentials, startS3 } from "../support/s3.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { openRealTiers, type RealTiers } from "../support/tiers.js";
import { setTimeout as delay } from "node:timers/promises";

async function seedThreads(real: RealTiers, threads: number, events: number): Promise<Map<string, number>> {
  const { hot } = real.tiers;
  const last = new Map<string, number>();
  for (let t = 0; t < threads; t++) {
    const threadId = hot.newThreadId();
    await hot.append({ tenantId: "acme", threadId, create: { metadata: {} }, events: [newEvent("thread.created")] });
    for (let done = 1; done < events; done += 200) {
      await hot.append({ tenantId: "acme", threadId, events: Array.from({ length: Math.min(200, events - done) }, () => newEvent()) });
    }
    last.set(threadId, events);
  }
  // Persist everything in-process, so the child only archives.
  const controller = new AbortController();
  const { Persister } = await import("../../workers/persister/persister.js");
  const { pino } = await import("pino");
  const persisting = new Persister({
    feeds: real.tiers.feeds, leases: real.tiers.leases, warm: real.tiers.warm, log: pino({ level: "silent" }),
    batchEvents: 2000, batchWaitMs: 20, hotWindow: 10, leaseMs: 1000,
  }).run(controller.signal);
  for (const [threadId, n] of last) {
    while (((await real.tiers.warm.getThread(threadId))?.lastSeq ?? 0) < n) await delay(50);
  }
  controller.abort();
  await persisting;
  return last;
}

async function checkEveryPlace(t: import("ava").ExecutionContext, real: RealTiers, last: Map<string, number>) {
  for (const [threadId, n] of last) {
    const archives = await real.db.any<{ from_seq: number; to_seq: number; event_count: number }>(
      "SELECT from_seq, to_seq, event_count FROM event_archives WHERE thread_id = $1 ORDER BY from_seq",
      [threadId],
    );
    let next = 1;
    for (const a of archives) {
      t.is(a.from_seq, next, "archives are contiguous and never overlap");
      t.is(a.event_count, a.to_seq - a.from_seq + 1);
      next = a.to_seq + 1;
    }
    const rows = await real.db.one<{ n: number; min: number | null }>(
      "SELECT count(*)::int AS n, min(seq) AS min FROM agent_events WHERE thread_id = $1",
      [threadId],
    );
    t.is(rows.n, n - next + 1, "rows hold exactly what no archive holds");
    if (rows.n > 0) t.is(rows.min, next);
    const seqs: number[] = [];
    for await (const e of real.log.scan(threadId, 0)) seqs.push(e.seq);
    t.deepEqual(seqs, Array.from({ length: n }, (_, i) => i + 1));
  }
}

test("SIGKILLed archivers lose and duplicate nothing", async (t) => {
  t.timeout(120_000);
  const s3 = await startS3();
  t.teardown(() => s3.stop());
  const s3Env = {
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_ACCESS_KEY_ID: s3Credentials.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3Credentials.secretAccessKey,
    EVENTIDE_ARCHIVE_AFTER: "0s",
    EVENTIDE_ARCHIVE_INTERVAL: "100ms",
    EVENTIDE_ARCHIVE_MAX_EVENTS: "50",
    // A killed archiver's claim on its thread lapses in time for the next one (5 minutes by default).
    EVENTIDE_ARCHIVE_LEASE: "3s",
  };
  const real = await openRealTiers(s3Env);
  t.teardown(() => real.cleanup());
  const last = await seedThreads(real, 2, 1_000);

  for (let round = 0; round < 4; round++) {
    const child = spawnRole("archiver", real.env);
    await delay(1_300 + round * 200);
    await kill(child);
  }
  const final = spawnRole("archiver", real.env);
  t.teardown(() => kill(final));
  const total = [...last.values()].reduce((a, b) => a + b, 0);
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    const { n } = await real.db.one<{ n: number }>("SELECT count(*)::int AS n FROM agent_events");
    if (n === 0) break;
    await delay(300);
  }
  await kill(final);
  const { archived } = await real.db.one<{ archived: number }>("SELECT coalesce(sum(event_count), 0)::int AS archived FROM event_archives");
  t.is(archived, total, "everything ended up archived once");
  await checkEveryPlace(t, real, last);
});

test("with S3 unreachable the archiver backs off, Postgres keeps the rows, and it resumes", async (t) => {
  t.timeout(120_000);
  const s3 = await startS3();
  t.teardown(() => s3.stop());
  const proxy = new TcpProxy({ host: "127.0.0.1", port: Number(new URL(s3.endpoint).port) });
  await proxy.start();
  t.teardown(() => proxy.stop());
  const real = await openRealTiers({
    S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
    S3_BUCKET: s3.bucket,
    S3_ACCESS_KEY_ID: s3Credentials.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3Credentials.secretAccessKey,
    EVENTIDE_ARCHIVE_AFTER: "0s",
    EVENTIDE_ARCHIVE_INTERVAL: "100ms",
    EVENTIDE_ARCHIVE_MAX_EVENTS: "100",
  });
  t.teardown(() => real.cleanup());
  const last = await seedThreads(real, 2, 400);
  await proxy.cut();
  const child = spawnRole("archiver", real.env);
  t.teardown(() => kill(child));
  await delay(3_000);
  const { n: kept } = await real.db.one<{ n: number }>("SELECT count(*)::int AS n FROM agent_events");
  t.is(kept, 800, "nothing left Postgres while S3 was down");
  const { n: recorded } = await real.db.one<{ n: number }>("SELECT count(*)::int AS n FROM event_archives");
  t.is(recorded, 0);
  await proxy.restore();
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    const { n } = await real.db.one<{ n: number }>("SELECT count(*)::int AS n FROM agent_events");
    if (n === 0) break;
    await delay(300);
  }
  await checkEveryPlace(t, real, last);
  const { n: rows } = await real.db.one<{ n: number }>("SELECT count(*)::int AS n FROM agent_events");
  t.is(rows, 0, "archived once S3 came back");
});
