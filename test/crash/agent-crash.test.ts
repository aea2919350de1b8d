// An agent killed mid-turn (child process, SIGKILL): its stream drops, the
// turn is requeued (turn.retrying, attempt 2) and another agent finishes it;
// the thread's log stays gapless, each seq once, the dead agent's deltas kept.
import test from "ava";
import { pino } from "pino";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { ReferenceAgent, replyTokens } from "../../workers/reference-agent/reference-agent.js";
import { exited, kill, spawnRole } from "../support/child.js";
import { startTestServer, tierKinds, waitForTurnStatus } from "../support/server.js";

for (const tier of tierKinds) {
  test(`${tier}: a reference agent killed mid-turn: the turn is requeued and finished by another agent`, async (t) => {
    const server = await startTestServer(tier, { EVENTIDE_LEASE_TTL: "5s", EVENTIDE_LEASE_SWEEP: "100ms", EVENTIDE_RETRY_BACKOFF: "50ms" });
    t.teardown(() => server.close());
    const doomed = spawnRole("agent", {
      EVENTIDE_AGENT_URL: server.baseUrl,
      EVENTIDE_AGENT_ID: "doomed",
      EVENTIDE_AGENT_TOKEN_DELAY: "150ms",
    });
    t.teardown(() => kill(doomed));
    const input = { text: Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ") };
    const { thread, turn } = await server.turns().submitTurn({ input });
    const threadId = thread!.threadId;

    // Kill it once a few deltas are in: mid-turn, mid-stream.
    const tail = server.events().tailEvents({ threadId, afterSeq: 0n, follow: true }, { signal: AbortSignal.timeout(60_000) });
    let deltas = 0;
    for await (const res of tail) {
      if (res.item.case === "event" && res.item.value.type === "message.delta" && ++deltas === 3) break;
    }
    await kill(doomed);
    t.is(doomed.signalCode, "SIGKILL");

    const controller = new AbortController();
    const healthy = new ReferenceAgent({ baseUrl: server.baseUrl, agentId: "healthy", maxInFlight: 1, tokenDelayMs: 0, log: pino({ level: "silent" }) });
    const running = healthy.run(controller.signal);
    try {
      const done = await waitForTurnStatus(server, turn!.turnId, TurnStatus.COMPLETED, 30_000);
      t.like(done, { status: TurnStatus.COMPLETED, attempt: 2, agentId: "healthy" });

      const events = (await server.events().listEvents({ threadId, pageSize: 1000 })).events;
      t.deepEqual(events.map((e) => Number(e.seq)), events.map((_, i) => i + 1), "gapless, each seq once");
      const lifecycle = events.filter((e) => e.type.startsWith("turn.")).map((e) => [e.type, e.payload?.agent_id ?? ""]);
      t.deepEqual(lifecycle, [
        ["turn.submitted", ""],
        ["turn.started", "doomed"],
        ["turn.retrying", ""],
        ["turn.started", "healthy"],
        ["turn.completed", ""],
      ]);
      const retrying = events.find((e) => e.type === "turn.retrying")!;
      t.regex(String(retrying.payload!.error), /doomed disconnected/);
      // The second attempt streamed the whole reply after its turn.started.
      const secondStart = events.findIndex((e) => e.type === "turn.started" && e.payload?.agent_id === "healthy");
      const secondDeltas = events.slice(secondStart).filter((e) => e.type === "message.delta").map((e) => String(e.payload!.delta));
      t.is(secondDeltas.join(""), replyTokens(input).join(""));
      const firstDeltas = events.slice(0, secondStart).filter((e) => e.type === "message.delta");
      t.true(firstDeltas.length >= 3, "what the dead agent streamed stays in the log");
    } finally {
      controller.abort();
      await running;
      await exited(doomed);
    }
  });
}
