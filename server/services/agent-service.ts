// AgentService: the agents' work feed and the outcomes of their turns.
// Dispatch state lives behind TurnDispatch (server/tiers/hot/turn-dispatch.ts).
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "pino";
import { type AgentService, type ReceiveTurnsResponse, ReceiveTurnsResponseSchema } from "../../gen/eventide/v1/agent_service_pb.js";
import { agentFeed, type FeedItem } from "../dispatch/agent-feed.js";
import { callerOf, tenantFilter } from "../auth.js";
import type { EventLog } from "../log/event-log.js";
import type { TurnDispatch } from "../tiers/hot/turn-dispatch.js";
import { ownedLease } from "./ownership.js";
import { toThread, toTurn } from "./convert.js";
import { endingAtShutdown, type StreamShutdown } from "./shutdown.js";
import * as v from "./validation.js";

export interface AgentServiceDeps {
  dispatch: TurnDispatch;
  events: EventLog;
  /** How often an idle feed looks for work it was not told about. */
  pollMs: number;
  log: Logger;
  /** Aborts when the server shuts down: feeds requeue what they hold and end with UNAVAILABLE. */
  shutdown?: StreamShutdown;
}

export function agentService(deps: AgentServiceDeps): Partial<ServiceImpl<typeof AgentService>> {
  const { dispatch, events } = deps;
  return {
    async *receiveTurns(req, ctx) {
      const agentId = v.agentId("agent_id", req.agentId);
      const maxInFlight = v.maxInFlight("max_in_flight", req.maxInFlight);
      const tenantId = tenantFilter(callerOf(ctx));
      const feed = endingAtShutdown(
        (signal) => agentFeed({ agentId, tenantId, maxInFlight, dispatch, pollMs: deps.pollMs, log: deps.log }, signal),
        ctx.signal,
        deps.shutdown,
        "server shutting down; the turns this feed held were requeued: reconnect to another server",
      );
      for await (const item of feed) yield feedResponse(item);
    },

    async renewLease(req, ctx) {
      const leaseId = await ownedLease(events, callerOf(ctx), v.leaseId("lease_id", req.leaseId));
      const expires = await dispatch.renew(leaseId);
      return { leaseExpiresAt: timestampFromMs(expires) };
    },

    async completeTurn(req, ctx) {
      const turnId = v.requireUlid("turn_id", req.turnId);
      const output = v.jsonObject("output", req.output);
      const leaseId = await ownedLease(events, callerOf(ctx), v.leaseId("lease_id", req.leaseId));
      return { turn: toTurn(await dispatch.complete(turnId, leaseId, output)) };
    },

    async failTurn(req, ctx) {
      const turnId = v.requireUlid("turn_id", req.turnId);
      const error = v.maxChars("error", req.error, v.limits.errorChars);
      const leaseId = await ownedLease(events, callerOf(ctx), v.leaseId("lease_id", req.leaseId));
      return { turn: toTurn(await dispatch.fail(turnId, leaseId, error, req.retryable)) };
    },
  };
}

function feedResponse(item: FeedItem): ReceiveTurnsResponse {
  if (item.kind === "cancellation") {
    return create(ReceiveTurnsResponseSchema, { item: { case: "cancellation", value: { turnId: item.turnId, leaseId: item.leaseId } } });
  }
  const a = item.assignment;
  return create(ReceiveTurnsResponseSchema, {
    item: {
      case: "assignment",
      value: {
        turn: toTurn(a.turn),
        thread: toThread(a.thread),
        leaseId: a.leaseId,
        leaseExpiresAt: timestampFromMs(a.leaseExpiresAt),
        attempt: a.attempt,
      },
    },
  });
}
