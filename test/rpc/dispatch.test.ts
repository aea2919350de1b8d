// Agent dispatch through the real server, on both tiers: ordering and
// stickiness with several agents, leases and fencing, retries and
// dead-lettering, cancellation, multitask strategies, agents that leave.
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { AgentService } from "../../gen/eventide/v1/agent_service_pb.js";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { MultitaskStrategy } from "../../gen/eventide/v1/turn_service_pb.js";
import { completeAtOnce, hold, startTestAgent } from "../support/agents.js";
import { serverPerTier, type TestServer, tierKinds, waitForTurnStatus } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const servers = serverPerTier(test, {
  EVENTIDE_LEASE_TTL: "800ms",
  EVENTIDE_LEASE_SWEEP: "100ms",
  EVENTIDE_RETRY_BACKOFF: "100ms",
  EVENTIDE_MAX_ATTEMPTS: "2",
});

const code = (err: unknown) => ConnectError.from(err).code;

async function history(server: TestServer, threadId: string) {
  const items = [];
  for await (const res of server.events().tailEvents({ threadId, afterSeq: 0n, follow: false })) {
    if (res.item.case === "event") items.push(res.item.value);
  }
  return items;
}

for (const tier of tierKinds) {
  test.serial(`${tier}: several agents, several threads: turns run one at a time in order, each thread sticks to one agent`, async (t) => {
    const server = servers.get(tier)!;
    const agents = ["a", "b", "c"].map((n) => startTestAgent(server.transport("grpc"), `${tier}-agent-${n}`, completeAtOnce, 2));
    try {
      const threads = await Promise.all(Array.from({ length: 4 }, () => server.turns().createThread({})));
      const turnIds: string[][] = threads.map(() => []);
      // Three turns a thread, submitted back to back: they queue behind each other.
      for (let round = 0; round < 3; round++) {
        for (const [i, { thread }] of threads.entries()) {
          const res = await server.turns().submitTurn({ threadId: thread!.threadId, input: { round } });
          turnIds[i].push(res.turn!.turnId);
        }
      }
      for (const ids of turnIds) for (const id of ids) await waitForTurnStatus(server, id, TurnStatus.COMPLETED);
      for (const [i, { thread }] of threads.entries()) {
        const events = await history(server, thread!.threadId);
        t.deepEqual(events.map((e) => Number(e.seq)), events.map((_, k) => k + 1), "gapless");
        const lifecycle = events.filter((e) => e.type === "turn.started" || e.type === "turn.completed");
        // started A, completed A, started B, completed B, …: never two at once, in submission order.
        t.deepEqual(lifecycle.map((e) => [e.type, e.turnId]), turnIds[i].flatMap((id) => [["turn.started", id], ["turn.completed", id]]));
        const runners = new Set(events.filter((e) => e.type === "turn.started").map((e) => e.payload!.agent_id));
        t.is(runners.size, 1, `thread ${i} stuck to one agent (${[...runners].join(", ")})`);
        for (const id of turnIds[i]) {
          const { turn } = await server.turns().getTurn({ turnId: id });
          t.like(turn, { status: TurnStatus.COMPLETED, attempt: 1 });
        }
      }
      const assigned = agents.flatMap((a) => a.assignments.map((x) => x.turn!.turnId));
      t.is(assigned.length, 12, "each turn assigned once");
      t.is(new Set(assigned).size, 12);
    } finally {
      for (const a of agents) await a.stop();
    }
  });

  test.serial(`${tier}: a lapsed lease requeues the turn (turn.retrying, attempt 2) and fences the zombie`, async (t) => {
    const server = servers.get(tier)!;
    // It holds its first turn without renewing; the retry may come back to it (its stream is
    // still open), so it completes later ones like a healthy agent would.
    const zombie = startTestAgent(server.transport("grpc"), `${tier}-zombie`, (a, self) =>
      self.assignments.length > 1 ? completeAtOnce(a, self) : undefined,
    );
    try {
      const { turn } = await server.turns().submitTurn({ input: {} });
      const [first] = await zombie.waitForAssignments(1);
      t.is(first.attempt, 1);
      // The zombie never renews: the sweeper requeues after the TTL; a healthy agent takes it.
      const healthy = startTestAgent(server.transport("grpc"), `${tier}-healthy`, completeAtOnce);
      try {
        const done = await waitForTurnStatus(server, turn!.turnId, TurnStatus.COMPLETED);
        t.is(done.attempt, 2);
      } finally {
        await healthy.stop();
      }
      const before = await history(server, turn!.threadId);
      const err = await t.throwsAsync(
        server.events().appendEvents({ threadId: turn!.threadId, turnId: turn!.turnId, leaseId: first.leaseId, events: [{ type: "message.delta" }] }),
      );
      t.is(code(err), Code.FailedPrecondition);
      t.is(code(await t.throwsAsync(zombie.agents.renewLease({ leaseId: first.leaseId }))), Code.FailedPrecondition);
      t.is(code(await t.throwsAsync(zombie.agents.completeTurn({ turnId: turn!.turnId, leaseId: first.leaseId }))), Code.FailedPrecondition);
      t.is((await history(server, turn!.threadId)).length, before.length, "the zombie wrote nothing");
      t.deepEqual(
        before.filter((e) => e.type.startsWith("turn.")).map((e) => e.type),
        ["turn.submitted", "turn.started", "turn.retrying", "turn.started", "turn.completed"],
      );
    } finally {
      await zombie.stop();
    }
  });

  test.serial(`${tier}: retryable failures back off and dead-letter after max attempts; non-retryable ones fail`, async (t) => {
    const server = servers.get(tier)!;
    const agent = startTestAgent(server.transport("grpc"), `${tier}-failing`, async (a, self) => {
      await self.agents.failTurn({ turnId: a.turn!.turnId, leaseId: a.leaseId, error: `boom ${a.attempt}`, retryable: a.turn!.input!.retry === true });
    });
    try {
      const retried = await server.turns().submitTurn({ input: { retry: true } });
      const dead = await waitForTurnStatus(server, retried.turn!.turnId, TurnStatus.DEAD_LETTERED);
      t.like(dead, { attempt: 2, error: "boom 2" });
      const types = (await history(server, retried.thread!.threadId)).map((e) => e.type);
      t.deepEqual(types.slice(2), ["turn.started", "turn.retrying", "turn.started", "turn.dead_lettered"]);

      const once = await server.turns().submitTurn({ input: { retry: false } });
      t.like(await waitForTurnStatus(server, once.turn!.turnId, TurnStatus.FAILED), { attempt: 1, error: "boom 1" });
    } finally {
      await agent.stop();
    }
  });

  test.serial(`${tier}: CancelTurn: a queued turn never runs; a running one tells its agent, whose lease answers CANCELLED`, async (t) => {
    const server = servers.get(tier)!;
    const agent = startTestAgent(server.transport("grpc"), `${tier}-canceller`, hold);
    try {
      const running = await server.turns().submitTurn({ input: {} });
      const threadId = running.thread!.threadId;
      const queued = await server.turns().submitTurn({ threadId, input: {} });
      const [a] = await agent.waitForAssignments(1);
      const cancelledQueued = await server.turns().cancelTurn({ turnId: queued.turn!.turnId, reason: "changed my mind" });
      t.is(cancelledQueued.turn!.status, TurnStatus.CANCELLED);
      const cancelledRunning = await server.turns().cancelTurn({ turnId: running.turn!.turnId });
      t.is(cancelledRunning.turn!.status, TurnStatus.CANCELLED);
      const notice = await agent.waitForCancellation(running.turn!.turnId);
      t.is(notice.leaseId, a.leaseId);
      t.is(code(await t.throwsAsync(agent.agents.renewLease({ leaseId: a.leaseId }))), Code.Canceled);
      const err = await t.throwsAsync(
        server.events().appendEvents({ threadId, turnId: running.turn!.turnId, leaseId: a.leaseId, events: [{ type: "message.delta" }] }),
      );
      t.is(code(err), Code.Canceled);
      await delay(300);
      t.is(agent.assignments.length, 1, "the cancelled queued turn was never assigned");
      const cancelled = (await history(server, threadId)).filter((e) => e.type === "turn.cancelled");
      t.deepEqual(cancelled.map((e) => e.turnId), [queued.turn!.turnId, running.turn!.turnId]);
      t.is((await server.turns().getThread({ threadId })).thread!.status, 1 /* IDLE */);
    } finally {
      await agent.stop();
    }
  });

  test.serial(`${tier}: multitask REJECT refuses and writes nothing; INTERRUPT cancels the running turn and runs the new one`, async (t) => {
    const server = servers.get(tier)!;
    const agent = startTestAgent(server.transport("grpc"), `${tier}-multitask`, hold);
    try {
      const first = await server.turns().submitTurn({ input: {} });
      const threadId = first.thread!.threadId;
      const [a] = await agent.waitForAssignments(1);
      const before = (await server.turns().getThread({ threadId })).thread!.lastSeq;
      const err = await t.throwsAsync(server.turns().submitTurn({ threadId, input: {}, multitaskStrategy: MultitaskStrategy.REJECT }));
      t.is(code(err), Code.FailedPrecondition);
      t.is((await server.turns().getThread({ threadId })).thread!.lastSeq, before, "nothing written");

      const second = await server.turns().submitTurn({ threadId, input: {}, multitaskStrategy: MultitaskStrategy.INTERRUPT });
      await agent.waitForCancellation(first.turn!.turnId);
      const [, b] = await agent.waitForAssignments(2);
      t.is(b.turn!.turnId, second.turn!.turnId);
      t.is((await server.turns().getTurn({ turnId: first.turn!.turnId })).turn!.status, TurnStatus.CANCELLED);
      t.is(a.turn!.turnId, first.turn!.turnId);
      // An ENQUEUE (the default) waits behind the running one.
      const third = await server.turns().submitTurn({ threadId, input: {} });
      t.is(third.turn!.status, TurnStatus.QUEUED);
      // Leave nothing queued for the next test's agents.
      for (const id of [third.turn!.turnId, second.turn!.turnId]) await server.turns().cancelTurn({ turnId: id });
    } finally {
      await agent.stop();
    }
  });

  test.serial(`${tier}: an agent whose stream drops has its turn requeued and finished by another`, async (t) => {
    const server = servers.get(tier)!;
    const leaving = startTestAgent(server.transport("grpc"), `${tier}-leaving`, hold);
    const { turn } = await server.turns().submitTurn({ input: {} });
    await leaving.waitForAssignments(1);
    await leaving.stop();
    const other = startTestAgent(server.transport("grpc"), `${tier}-other`, completeAtOnce);
    try {
      const done = await waitForTurnStatus(server, turn!.turnId, TurnStatus.COMPLETED);
      t.is(done.attempt, 2);
      t.is(done.agentId, `${tier}-other`);
      const retry = (await history(server, turn!.threadId)).find((e) => e.type === "turn.retrying")!;
      t.regex(String(retry.payload!.error), /disconnected/);
    } finally {
      await other.stop();
    }
  });

  test.serial(`${tier}: bad agent input answers INVALID_ARGUMENT`, async (t) => {
    const server = servers.get(tier)!;
    const agents = createClient(AgentService, server.transport("grpc"));
    const feed = async (req: { agentId: string; maxInFlight?: number }) => {
      for await (const _ of agents.receiveTurns(req)) break;
    };
    t.is(code(await t.throwsAsync(feed({ agentId: "" }))), Code.InvalidArgument);
    t.is(code(await t.throwsAsync(feed({ agentId: "x".repeat(129) }))), Code.InvalidArgument);
    t.is(code(await t.throwsAsync(feed({ agentId: "ok", maxInFlight: -1 }))), Code.InvalidArgument);
    t.is(code(await t.throwsAsync(agents.completeTurn({ turnId: "nope", leaseId: "x" }))), Code.InvalidArgument);
    t.is(code(await t.throwsAsync(agents.failTurn({ turnId: "01ARZ3NDEKTSV4RRFFQ69G5FAV", leaseId: "x", error: "e".repeat(5000) }))), Code.InvalidArgument);
    const err = await t.throwsAsync(server.turns().submitTurn({ input: {}, multitaskStrategy: 99 as MultitaskStrategy }));
    t.is(code(err), Code.InvalidArgument);
  });
}
