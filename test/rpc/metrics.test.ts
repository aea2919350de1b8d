// /metrics after real traffic, on both tiers: RPC counts and latencies by
// code, events appended and persisted, tails and agent feeds open, a slow
// tail's dropped buffer, dispatch queue depth, archives, lapsed leases.
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { ArchiveService } from "../../gen/eventide/v1/archive_service_pb.js";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { newId } from "../../server/domain/ids.js";
import { type MetricsServer, serveMetrics } from "../../server/observability/metrics-server.js";
import { completeAtOnce, hold, startTestAgent } from "../support/agents.js";
import { scrape, scrapeUntil } from "../support/prometheus.js";
import { startTestServer, type TestServer, tierKinds, waitForTurnStatus, waitPersisted } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const turnService = { service: "eventide.v1.TurnService" };
const eventService = { service: "eventide.v1.EventService" };

/** A following tail whose received seqs can be waited for. */
function openTail(server: TestServer, threadId: string) {
  const controller = new AbortController();
  const seqs: number[] = [];
  let caughtUp = false;
  const running = (async () => {
    try {
      for await (const res of server.events().tailEvents({ threadId, afterSeq: 0n, follow: true }, { signal: controller.signal })) {
        if (res.item.case === "event") seqs.push(Number(res.item.value.seq));
        if (res.item.case === "caughtUp") caughtUp = true;
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
  })();
  const until = async (done: () => boolean, what: string) => {
    // As long as the other waits here (waitPersisted): a loaded machine is slow, not wrong.
    for (const deadline = Date.now() + 30_000; !done(); await delay(10)) {
      if (Date.now() > deadline) throw new Error(`tail: timed out waiting for ${what}`);
    }
  };
  return {
    seqs,
    caughtUp: () => until(() => caughtUp, "caught_up"),
    through: (seq: number) => until(() => seqs.at(-1) === seq, `seq ${seq}`),
    async close() {
      controller.abort();
      await running;
    },
  };
}

for (const tier of tierKinds) {
  test(`${tier}: /metrics counts what the traffic did`, async (t) => {
    const server = await startTestServer(tier, {
      // A 5-event append overflows a following tail's buffer of 2: one drop, then it reads storage.
      EVENTIDE_TAIL_BUFFER: "2",
      EVENTIDE_LEASE_TTL: "1s",
      EVENTIDE_LEASE_SWEEP: "100ms",
      EVENTIDE_PERSIST_WAIT_MS: "5",
    });
    let metricsServer: MetricsServer | undefined;
    try {
      metricsServer = await serveMetrics(server.core.metrics, 0, "127.0.0.1");
      const port = metricsServer.port;
      const turns = server.turns();
      const events = server.events();

      const first = await scrape(port);
      t.regex(first.contentType, /^text\/plain; version=0\.0\.4/);
      t.is(first.value("eventide_events_appended_total"), 0);
      t.true(first.value("eventide_process_cpu_seconds_total")! > 0, "process metrics, prefixed");

      // A thread (thread.created), followed by a tail.
      const { thread } = await turns.createThread({});
      const threadId = thread!.threadId;
      const tail = openTail(server, threadId);
      await tail.caughtUp();
      t.is((await scrape(port)).value("eventide_active_tails"), 1);

      // Five events in one append: more than the tail buffers.
      const appended = await events.appendEvents({
        threadId,
        events: Array.from({ length: 5 }, (_, i) => ({ type: "message.delta", payload: { i }, metadata: { correlation_id: "c-1" } })),
      });
      t.is(appended.events.length, 5);
      await tail.through(6);
      t.deepEqual(tail.seqs, [1, 2, 3, 4, 5, 6], "the tail caught up from storage after the drop");
      t.is((await scrape(port)).value("eventide_fanout_drops_total", { reason: "buffer" }), 1);
      await tail.close();
      await scrapeUntil(port, (s) => s.value("eventide_active_tails") === 0, "the tail to close");

      // Unknown thread: NOT_FOUND.
      const notFound = await turns.getThread({ threadId: newId() }).catch((err) => ConnectError.from(err));
      t.is((notFound as ConnectError).code, Code.NotFound);

      // A turn with no agent connected waits in the dispatch queue.
      const { turn } = await turns.submitTurn({ threadId, input: { text: "hi" } });
      t.is((await scrape(port)).value("eventide_dispatch_ready_threads"), 1);
      const agent = startTestAgent(server.transport("grpc"), `${tier}-metrics-agent`, completeAtOnce);
      try {
        await waitForTurnStatus(server, turn!.turnId, TurnStatus.COMPLETED);
        const during = await scrape(port);
        t.is(during.value("eventide_active_agent_feeds"), 1);
        t.is(during.value("eventide_dispatch_ready_threads"), 0);
      } finally {
        await agent.stop();
      }
      await scrapeUntil(port, (s) => s.value("eventide_active_agent_feeds") === 0, "the agent feed to close");

      // created, 5 deltas, submitted, started, the agent's delta, completed.
      const lastSeq = 10;
      await waitPersisted(server, threadId, lastSeq);
      const persisted = await scrapeUntil(port, (s) => s.value("eventide_events_persisted_total") === lastSeq, "persisted events counted");
      t.is(persisted.value("eventide_persist_lag_seconds_count"), lastSeq, "one lag observation per event");
      t.is(persisted.value("eventide_persist_batch_events_sum"), lastSeq);
      t.true(persisted.value("eventide_persist_batch_events_count")! >= 1);
      t.true(persisted.value("eventide_persist_lag_seconds_bucket", { le: "+Inf" })! === lastSeq);

      const { archives } = await createClient(ArchiveService, server.transport("grpc")).archiveThread({ threadId });
      t.is(archives.length, 1);

      // A lease that lapses: the sweeper releases it.
      const holder = startTestAgent(server.transport("grpc"), `${tier}-metrics-holder`, hold);
      try {
        await turns.submitTurn({ input: { text: "held" } }); // a new thread: thread.created + turn.submitted
        await holder.waitForAssignments(1);
        const lapsed = await scrapeUntil(port, (s) => s.value("eventide_lease_expiries_total")! >= 1, "a lapsed lease", 15_000);
        t.is(lapsed.value("eventide_lease_expiries_total"), 1);
      } finally {
        await holder.stop();
      }

      const end = await scrapeUntil(
        port,
        (s) => s.value("eventide_rpc_requests_total", { ...eventService, method: "TailEvents", code: "canceled" }) === 1,
        "the cancelled tail to be counted",
      );
      // Appended through the log: 1 + 5 + 1 + 1 on the first thread, 2 on the second (dispatch's turn.* events are not appends).
      t.is(end.value("eventide_events_appended_total"), 10);
      const appendOk = { ...eventService, method: "AppendEvents", code: "ok" };
      t.is(end.value("eventide_rpc_requests_total", appendOk), 2, "the test's append and the agent's");
      t.is(end.value("eventide_rpc_duration_seconds_count", appendOk), 2);
      t.is(end.value("eventide_rpc_duration_seconds_bucket", { ...appendOk, le: "+Inf" }), 2);
      t.true(end.value("eventide_rpc_duration_seconds_sum", appendOk)! > 0);
      t.is(end.value("eventide_rpc_requests_total", { ...turnService, method: "GetThread", code: "not_found" }), 1);
      t.is(end.value("eventide_rpc_requests_total", { ...turnService, method: "GetThread", code: "ok" }), undefined);
      t.is(end.value("eventide_rpc_requests_total", { ...turnService, method: "CreateThread", code: "ok" }), 1);
      t.is(end.value("eventide_rpc_requests_total", { ...turnService, method: "SubmitTurn", code: "ok" }), 2);
      t.is(end.value("eventide_rpc_requests_total", { service: "eventide.v1.AgentService", method: "CompleteTurn", code: "ok" }), 1);
      t.is(end.value("eventide_rpc_requests_total", { service: "eventide.v1.ArchiveService", method: "ArchiveThread", code: "ok" }), 1);
      t.is(end.value("eventide_archives_total"), 1);
      t.is(end.value("eventide_archive_bytes_total"), Number(archives[0].bytes));
      t.is(end.value("eventide_archived_events_total"), lastSeq);
      t.is(end.value("eventide_fanout_drops_total", { reason: "buffer" }), 1);
      t.is(end.value("eventide_fanout_drops_total", { reason: "resync" }), 0);
      t.is(end.value("eventide_active_tails"), 0);
    } finally {
      await metricsServer?.close();
      await server.close();
    }
  });
}

test("the metrics server answers 404 off /metrics and closes with a keep-alive scraper connected", async (t) => {
  const server = await startTestServer("memory");
  try {
    const metricsServer = await serveMetrics(server.core.metrics, 0, "127.0.0.1");
    t.is((await fetch(`http://127.0.0.1:${metricsServer.port}/`)).status, 404);
    t.is((await fetch(`http://127.0.0.1:${metricsServer.port}/metrics`)).status, 200);
    await metricsServer.close();
    await t.throwsAsync(fetch(`http://127.0.0.1:${metricsServer.port}/metrics`));
  } finally {
    await server.close();
  }
});
