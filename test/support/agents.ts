// A scriptable agent for tests: follows ReceiveTurns and hands each
// assignment to a behaviour (complete at once, hold it, …).
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { AgentService, type TurnAssignment, type TurnCancellation } from "../../gen/eventide/v1/agent_service_pb.js";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import type { Core } from "../../server/core.js";
import type { Assignment } from "../../server/tiers/hot/turn-dispatch.js";
import { setTimeout as delay } from "node:timers/promises";

export interface TestAgent {
  agentId: string;
  assignments: TurnAssignment[];
  cancellations: TurnCancellation[];
  agents: Client<typeof AgentService>;
  /** Resolves when `n` assignments arrived (rejects after the timeout). */
  waitForAssignments(n: number, timeoutMs?: number): Promise<TurnAssignment[]>;
  waitForCancellation(turnId: string, timeoutMs?: number): Promise<TurnCancellation>;
  /** Ends the feed: the server requeues what this agent still holds. */
  stop(): Promise<void>;
}

export type Behaviour = (a: TurnAssignment, agent: TestAgent) => Promise<void> | void;

/** Appends one delta under the lease, then completes the turn. */
export const completeAtOnce: Behaviour = async (a, agent) => {
  const events = createClient(EventService, transportOf.get(agent)!);
  const turn = a.turn!;
  await events.appendEvents({
    threadId: turn.threadId,
    turnId: turn.turnId,
    leaseId: a.leaseId,
    events: [{ type: "message.delta", payload: { delta: agent.agentId } }],
  });
  await agent.agents.completeTurn({ turnId: turn.turnId, leaseId: a.leaseId, output: { by: agent.agentId } });
};

export const hold: Behaviour = () => {};

/**
 * Starts the thread's next queued turn for `agentId` straight through the dispatch tier
 * (no feed, nothing renews the lease): the assignment whose lease_id lets a test append
 * the turn's events. A queued turn takes none.
 */
export async function claimTurn(server: { core: Pick<Core, "dispatch"> }, threadId: string, agentId = "test-agent"): Promise<Assignment> {
  const res = await server.core.dispatch.claim(threadId, agentId);
  if (res.kind !== "assigned") throw new Error(`thread ${threadId}: no turn to claim (${res.kind})`);
  return res.assignment;
}

const transportOf = new WeakMap<TestAgent, Transport>();

export function startTestAgent(transport: Transport, agentId: string, behaviour: Behaviour, maxInFlight = 1): TestAgent {
  const controller = new AbortController();
  const agents = createClient(AgentService, transport);
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of waiters) w();
  };
  const agent: TestAgent = {
    agentId,
    assignments: [],
    cancellations: [],
    agents,
    waitForAssignments: (n, timeoutMs = 15_000) => until(() => agent.assignments.length >= n, () => agent.assignments, `${agentId}: ${n} assignments`, timeoutMs),
    waitForCancellation: (turnId, timeoutMs = 15_000) =>
      until(() => agent.cancellations.some((c) => c.turnId === turnId), () => agent.cancellations.find((c) => c.turnId === turnId)!, `${agentId}: cancellation of ${turnId}`, timeoutMs),
    async stop() {
      controller.abort();
      await running;
      // The server sees the stream end a moment later; until then its side of
      // the feed may still claim (and then requeue) a turn of the next test.
      await delay(250);
    },
  };
  transportOf.set(agent, transport);

  function until<T>(done: () => boolean, value: () => T, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(value());
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  }

  const running = (async () => {
    try {
      for await (const res of agents.receiveTurns({ agentId, maxInFlight }, { signal: controller.signal })) {
        if (res.item.case === "assignment") {
          agent.assignments.push(res.item.value);
          void Promise.resolve(behaviour(res.item.value, agent)).catch(() => {});
        } else if (res.item.case === "cancellation") {
          agent.cancellations.push(res.item.value);
        }
        notify();
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
  })();
  return agent;
}
