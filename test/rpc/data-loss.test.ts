// A hole planted in each tier (hot, warm, between warm and hot, cold) is never
// served as a shorter log: TailEvents delivers what precedes it and ends with
// DATA_LOSS naming the thread and the missing seqs; ListEvents, the HTTP API
// and the SSE stream say the same; the alarm goes off (metric, /readyz).
import test, { type ExecutionContext } from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { ArchiveService } from "../../gen/eventide/v1/archive_service_pb.js";
import { decodeArchive, encodeArchive, sha256Hex } from "../../server/tiers/cold/archive-format.js";
import type { HotKeys } from "../../server/tiers/hot/redis/keys.js";
import type { PostgresWarmStore } from "../../server/tiers/warm/postgres/postgres-warm-store.js";
import type { StoredEvent } from "../../server/domain/records.js";
import { connectRedis } from "../support/redis.js";
import { serverPerTier, startTestServer, type TestServer, tierKinds, waitPersisted } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const servers = serverPerTier(test, { EVENTIDE_HOT_WINDOW: "5", EVENTIDE_PERSIST_WAIT_MS: "5" });

const db = (s: TestServer) => (s.tiers.warm as PostgresWarmStore).db;

/** A thread of `events` events (thread.created + appends), persisted, with the hot window trimmed behind it. */
async function persistedThread(server: TestServer, events: number): Promise<string> {
  const { thread } = await server.turns().createThread({});
  const threadId = thread!.threadId;
  await server.events().appendEvents({ threadId, events: Array.from({ length: events - 1 }, (_, i) => ({ type: "message.delta", payload: { i } })) });
  await waitPersisted(server, threadId, events);
  for (let i = 0; i < 500 && (await server.tiers.hot.read(threadId, 0, 1))[0]?.seq !== events - 4; i++) await delay(20);
  return threadId;
}

/** Every read of the thread ends at the hole fromSeq..toSeq with DATA_LOSS, after delivering what precedes it. */
async function readsStopAtHole(t: ExecutionContext, server: TestServer, threadId: string, fromSeq: number, toSeq: number) {
  const named = `thread ${threadId} is missing seqs ${fromSeq}..${toSeq}`;
  const before = Array.from({ length: fromSeq - 1 }, (_, i) => i + 1);

  for (const batched of [0, 100]) {
    const delivered: number[] = [];
    const err = await t.throwsAsync(async () => {
      for await (const res of server.events().tailEvents({ threadId, follow: true, maxEventsPerResponse: batched }, { signal: AbortSignal.timeout(15_000) })) {
        if (res.item.case === "event") delivered.push(Number(res.item.value.seq));
        if (res.item.case === "events") delivered.push(...res.item.value.events.map((e) => Number(e.seq)));
      }
    });
    t.is(ConnectError.from(err).code, Code.DataLoss, `tail (batches of ${batched}): ${String(err)}`);
    t.true(ConnectError.from(err).rawMessage.startsWith(named), ConnectError.from(err).rawMessage);
    t.deepEqual(delivered, before, "everything before the hole, nothing after it");
  }

  const listed = await t.throwsAsync(server.events().listEvents({ threadId, pageSize: 1000 }));
  t.is(ConnectError.from(listed).code, Code.DataLoss);
  t.true(ConnectError.from(listed).rawMessage.startsWith(named));

  const page = await fetch(`${server.baseUrl}/threads/${threadId}/events?limit=1000`);
  t.is(page.status, 500);
  const body = (await page.json()) as { error: { code: string; message: string } };
  t.is(body.error.code, "data_loss");
  t.true(body.error.message.startsWith(named));

  const sse = await (await fetch(`${server.baseUrl}/threads/${threadId}/events/stream`, { signal: AbortSignal.timeout(15_000) })).text();
  t.deepEqual([...sse.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])), before);
  t.regex(sse, /event: error\ndata: \{"error":\{"code":"data_loss","message":"thread /);

  t.true(server.core.alarm.holes.some((h) => h.threadId === threadId && h.fromSeq === fromSeq && h.toSeq === toSeq && h.foundBy === "read"));
  const found = await server.core.metrics.registry.getSingleMetric("eventide_data_loss_total")!.get();
  t.true(found.values.some((v) => v.labels.found_by === "read" && v.value > 0));
  const ready = (await (await fetch(`${server.baseUrl}/readyz`)).json()) as { dataLoss?: { threadId: string }[] };
  t.true(ready.dataLoss?.some((h) => h.threadId === threadId));
}

for (const tier of tierKinds) {
  test(`${tier}: a hole inside a warm page answers DATA_LOSS on every read path`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await persistedThread(server, 40);
    await db(server).none("DELETE FROM agent_events WHERE thread_id = $1 AND seq IN (20, 21)", [threadId]);
    await readsStopAtHole(t, server, threadId, 20, 21);
  });

  test(`${tier}: a hole between the warm tier and the hot window answers DATA_LOSS`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await persistedThread(server, 40);
    // Hot holds 36-40; warm loses everything from 30 on.
    await db(server).none("DELETE FROM agent_events WHERE thread_id = $1 AND seq >= 30", [threadId]);
    await readsStopAtHole(t, server, threadId, 30, 35);
  });

  test(`${tier}: an archive that skips a seq (its checksum intact) answers DATA_LOSS`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await persistedThread(server, 40);
    const [archive] = (await createClient(ArchiveService, server.transport("grpc")).archiveThread({ threadId, upToSeq: 30n })).archives;
    // An archiver that wrote a bad object and recorded its checksum: the integrity check passes, the seqs do not.
    const events: StoredEvent[] = [];
    for await (const e of decodeArchive(await server.tiers.cold.get(archive.objectKey))) if (e.seq !== 10) events.push(e);
    const body = encodeArchive(events);
    await server.tiers.cold.put(archive.objectKey, body);
    await db(server).none("UPDATE event_archives SET bytes = $2, sha256 = $3 WHERE archive_id = $1", [archive.archiveId, body.length, sha256Hex(body)]);
    await readsStopAtHole(t, server, threadId, 10, 10);
  });
}

test("redis: a hole in the hot stream answers DATA_LOSS on every read path", async (t) => {
  // No persister: the events are only in the hot tier.
  const server = await startTestServer("redis", { EVENTIDE_ROLES: "server" });
  const redis = await connectRedis();
  t.teardown(async () => {
    redis.destroy();
    await server.close();
  });
  const { thread } = await server.turns().createThread({});
  const threadId = thread!.threadId;
  await server.events().appendEvents({ threadId, events: Array.from({ length: 9 }, () => ({ type: "message.delta" })) });
  const keys = (server.tiers.hot as unknown as { keys: HotKeys }).keys;
  t.is(await redis.xDel(keys.stream(threadId), ["5-0", "6-0"]), 2);
  await readsStopAtHole(t, server, threadId, 5, 6);
});
