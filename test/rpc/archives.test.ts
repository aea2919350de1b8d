// The cold tier through the server: archives on demand and by policy, reads
// that reach back to seq 1, integrity, and deletion from every tier.
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { ArchiveService } from "../../gen/eventide/v1/archive_service_pb.js";
import type { PostgresWarmStore } from "../../server/tiers/warm/postgres/postgres-warm-store.js";
import { claimTurn } from "../support/agents.js";
import { connectRedis } from "../support/redis.js";
import { collectTail, startTestServer, type TestServer, tierKinds, waitPersisted, serverPerTier } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const servers = serverPerTier(test, { EVENTIDE_HOT_WINDOW: "10", EVENTIDE_PERSIST_WAIT_MS: "5", EVENTIDE_ARCHIVE_MAX_EVENTS: "100" });

const archives = (s: TestServer) => createClient(ArchiveService, s.transport("grpc"));
const db = (s: TestServer) => (s.tiers.warm as PostgresWarmStore).db;
const seqsOf = (items: { item: { case?: string; value?: unknown } }[]) =>
  items.flatMap((i) => (i.item.case === "event" ? [Number((i.item.value as { seq: bigint }).seq)] : []));

async function threadWith(server: TestServer, events: number) {
  const { thread, turn } = await server.turns().submitTurn({ input: { text: "archive me" } });
  const threadId = thread!.threadId;
  // The turn's events come under its lease: turn.started is seq 3, the events follow, then turn.completed
  // (so no lapsing lease adds a turn.retrying later).
  const { leaseId } = await claimTurn(server, threadId);
  for (let done = 0; done < events; done += 100) {
    await server.events().appendEvents({
      threadId,
      turnId: turn!.turnId,
      leaseId,
      events: Array.from({ length: Math.min(100, events - done) }, (_, i) => ({ type: "message.delta", payload: { i: done + i, text: "héllo ✓" } })),
    });
  }
  await server.core.dispatch.complete(turn!.turnId, leaseId, {});
  const last = events + 4;
  await waitPersisted(server, threadId, last);
  return { threadId, turnId: turn!.turnId, last };
}

for (const tier of tierKinds) {
  test(`${tier}: ArchiveThread moves persisted events to cold objects; reads still reach seq 1`, async (t) => {
    const server = servers.get(tier)!;
    const { threadId, turnId, last } = await threadWith(server, 250);
    const res = await archives(server).archiveThread({ threadId, upToSeq: 230n });
    t.deepEqual(res.archives.map((a) => [Number(a.fromSeq), Number(a.toSeq)]), [[1, 100], [101, 200], [201, 230]]);
    t.true(res.archives.every((a) => a.sha256.length === 64 && a.bytes > 0n && a.objectKey.startsWith(`threads/default/${threadId}/`)));
    t.regex(res.archives[0].objectKey, /\/000000000001-000000000100\.jsonl\.gz$/);
    const { n } = await db(server).one("SELECT count(*)::int AS n FROM agent_events WHERE thread_id = $1", [threadId]);
    t.is(n, last - 230, "archived rows left Postgres");

    const listed = await archives(server).listArchives({ threadId });
    t.deepEqual(listed.archives.map((a) => a.archiveId), res.archives.map((a) => a.archiveId));
    const one = await archives(server).getArchive({ archiveId: res.archives[1].archiveId });
    t.is(one.archive!.eventCount, 100n);

    const tail = await collectTail((signal) => server.events().tailEvents({ threadId }, { signal }), () => false);
    t.deepEqual(seqsOf(tail), Array.from({ length: last }, (_, i) => i + 1));
    const mid = await collectTail((signal) => server.events().tailEvents({ threadId, afterSeq: 150n, types: ["message."] }, { signal }), () => false);
    t.deepEqual(seqsOf(mid), Array.from({ length: last - 151 }, (_, i) => i + 151), "the deltas after 150 (the last event is turn.completed)");
    const page = await server.events().listEvents({ threadId, afterSeq: 95n, pageSize: 10 });
    t.deepEqual(page.events.map((e) => Number(e.seq)), [96, 97, 98, 99, 100, 101, 102, 103, 104, 105]);
    t.deepEqual(page.events[0].payload, { i: 92, text: "héllo ✓" });
    const archivedEvent = page.events[3];
    const got = await server.events().getEvent({ eventId: archivedEvent.eventId });
    t.is(got.event!.seq, 99n, "GetEvent finds an archived event");
    t.is(got.event!.turnId, turnId);

    const again = await archives(server).archiveThread({ threadId });
    t.deepEqual(again.archives.map((a) => Number(a.fromSeq)), [231]);
    const empty = await archives(server).archiveThread({ threadId });
    t.deepEqual(empty.archives, []);
  });

  test(`${tier}: a corrupt archive answers DATA_LOSS with its key, never wrong events`, async (t) => {
    const server = servers.get(tier)!;
    const { threadId } = await threadWith(server, 50);
    const [archive] = (await archives(server).archiveThread({ threadId })).archives;
    await server.tiers.cold.put(archive.objectKey, Buffer.from("not the archive"));
    const err = await t.throwsAsync(collectTail((signal) => server.events().tailEvents({ threadId }, { signal }), () => false));
    t.is(ConnectError.from(err).code, Code.DataLoss);
    t.true(ConnectError.from(err).rawMessage.includes(archive.objectKey));
  });

  test(`${tier}: DeleteThread leaves no key, row or object of the thread anywhere`, async (t) => {
    const server = servers.get(tier)!;
    const { threadId, turnId } = await threadWith(server, 120);
    await archives(server).archiveThread({ threadId, upToSeq: 100n });
    t.true((await server.tiers.cold.list(`threads/default/${threadId}/`)).length > 0);
    await server.turns().deleteThread({ threadId });

    t.is(ConnectError.from(await t.throwsAsync(server.turns().getThread({ threadId }))).code, Code.NotFound);
    t.is(ConnectError.from(await t.throwsAsync(server.turns().getTurn({ turnId }))).code, Code.NotFound);
    t.is(ConnectError.from(await t.throwsAsync(server.events().appendEvents({ threadId, events: [{ type: "custom" }] }))).code, Code.NotFound);
    t.is(ConnectError.from(await t.throwsAsync(server.turns().submitTurn({ threadId, input: {} }))).code, Code.NotFound);
    t.is(ConnectError.from(await t.throwsAsync(server.turns().deleteThread({ threadId }))).code, Code.NotFound);

    t.deepEqual(await server.tiers.cold.list(`threads/default/${threadId}/`), [], "no cold object");
    for (const table of ["agent_events", "turns", "event_archives", "archived_event_ids"]) {
      const { n } = await db(server).one(`SELECT count(*)::int AS n FROM ${table} WHERE thread_id = $1`, [threadId]);
      t.is(n, 0, `no ${table} row`);
    }
    const tombstone = await db(server).one("SELECT status FROM threads WHERE thread_id = $1", [threadId]);
    t.is(tombstone.status, "deleted");
    t.deepEqual(await server.tiers.hot.read(threadId, 0, 10), [], "no hot events");
    t.is(await server.tiers.hot.getTurn(turnId), undefined, "no hot turn");
    if (tier === "redis") {
      const redis = await connectRedis();
      const keys: string[] = [];
      for await (const batch of redis.scanIterator({ MATCH: `*${threadId}*`, COUNT: 1000 })) keys.push(...batch);
      const hot = server.tiers.hot as unknown as { keys: { meta(id: string): string } };
      t.deepEqual(keys, [hot.keys.meta(threadId)], "only the tombstone is left in Redis");
      t.is(await redis.hGet(hot.keys.meta(threadId), "status"), "deleted");
      redis.destroy();
    }
  });

  test(`${tier}: ArchiveThread up to a seq past the last persisted one answers OUT_OF_RANGE and archives nothing`, async (t) => {
    const server = servers.get(tier)!;
    const { threadId, last } = await threadWith(server, 5);
    const err = ConnectError.from(await t.throwsAsync(archives(server).archiveThread({ threadId, upToSeq: BigInt(last + 1) })));
    t.is(Code[err.code], Code[Code.OutOfRange]);
    t.is(err.rawMessage, `up_to_seq ${last + 1} is past the thread's last persisted seq ${last}; nothing was archived`);
    t.deepEqual((await archives(server).listArchives({ threadId })).archives, []);
    const { n } = await db(server).one("SELECT count(*)::int AS n FROM agent_events WHERE thread_id = $1", [threadId]);
    t.is(n, last, "every row is still in Postgres");
    // Up to the last persisted seq itself is fine.
    const res = await archives(server).archiveThread({ threadId, upToSeq: BigInt(last) });
    t.deepEqual(res.archives.map((a) => [Number(a.fromSeq), Number(a.toSeq)]), [[1, last]]);
  });

  test(`${tier}: ArchiveService errors`, async (t) => {
    const server = servers.get(tier)!;
    const missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    t.is(ConnectError.from(await t.throwsAsync(archives(server).archiveThread({ threadId: missing }))).code, Code.NotFound);
    t.is(ConnectError.from(await t.throwsAsync(archives(server).getArchive({ archiveId: missing }))).code, Code.NotFound);
    t.is(ConnectError.from(await t.throwsAsync(archives(server).listArchives({ threadId: "x" }))).code, Code.InvalidArgument);
    t.is(ConnectError.from(await t.throwsAsync(archives(server).archiveThread({ threadId: missing, upToSeq: -1n }))).code, Code.InvalidArgument);
  });
}

for (const tier of tierKinds) {
  test(`${tier}: tails from seq 0 see 1..N once while the archiver and persister move events under them`, async (t) => {
    t.timeout(90_000);
    const server = await startTestServer(tier, {
      EVENTIDE_ROLES: "server,persister,archiver",
      EVENTIDE_HOT_WINDOW: "5",
      EVENTIDE_PERSIST_WAIT_MS: "5",
      EVENTIDE_ARCHIVE_AFTER: "0s",
      EVENTIDE_ARCHIVE_INTERVAL: "50ms",
      EVENTIDE_ARCHIVE_MAX_EVENTS: "40",
      EVENTIDE_HEARTBEAT_MS: "200",
    });
    t.teardown(() => server.close());
    const { thread } = await server.turns().createThread({});
    const threadId = thread!.threadId;
    let finished = false;
    let last = 1;
    const appender = (async () => {
      for (let i = 0; i < 120; i++) {
        const res = await server.events().appendEvents({ threadId, events: Array.from({ length: 1 + (i % 5) }, () => ({ type: "message.delta" })) });
        last = Number(res.lastSeq);
        await delay(10);
      }
    })();
    const tails = Array.from({ length: 4 }, async (_, n) => {
      await delay(300 * n);
      return collectTail(
        (signal) => server.events().tailEvents({ threadId, follow: true }, { signal }),
        (items) => finished && items.some((i) => i.item.case === "event" && Number(i.item.value.seq) === last),
        60_000,
      );
    });
    await appender;
    finished = true;
    for (const items of await Promise.all(tails)) {
      t.deepEqual(seqsOf(items), Array.from({ length: last }, (_, i) => i + 1));
    }
    const { n } = await db(server).one("SELECT count(*)::int AS n FROM event_archives WHERE thread_id = $1", [threadId]);
    t.true(n >= 3, `the thread spans ${n} archives`);
    const replay = await collectTail((signal) => server.events().tailEvents({ threadId }, { signal }), () => false);
    t.deepEqual(seqsOf(replay), Array.from({ length: last }, (_, i) => i + 1));
  });
}

for (const tier of tierKinds) {
  test(`${tier}: retention erases idle threads from every tier; their tails end with NOT_FOUND`, async (t) => {
    const server = await startTestServer(tier, { EVENTIDE_RETENTION: "1s", EVENTIDE_PERSIST_WAIT_MS: "5", EVENTIDE_HEARTBEAT_MS: "100" });
    t.teardown(() => server.close());
    const { threadId } = await threadWith(server, 30);
    await archives(server).archiveThread({ threadId, upToSeq: 20n });
    const fresh = await server.turns().createThread({});
    const tailing = collectTail((signal) => server.events().tailEvents({ threadId, follow: true }, { signal }), () => false, 20_000);
    await delay(1_200);
    await server.events().appendEvents({ threadId: fresh.thread!.threadId, events: [{ type: "custom" }] });
    const erased = await server.core.archiver.eraseExpired(new AbortController().signal);
    t.true(erased >= 1);
    t.is(ConnectError.from(await t.throwsAsync(tailing)).code, Code.NotFound, "the running tail learns the thread is gone");
    t.is(ConnectError.from(await t.throwsAsync(server.turns().getThread({ threadId }))).code, Code.NotFound);
    t.deepEqual(await server.tiers.cold.list(`threads/default/${threadId}/`), []);
    const { n } = await db(server).one("SELECT count(*)::int AS n FROM agent_events WHERE thread_id = $1", [threadId]);
    t.is(n, 0);
    // A thread active within the retention period stays.
    t.is((await server.turns().getThread({ threadId: fresh.thread!.threadId })).thread!.lastSeq, 2n);
  });
}
