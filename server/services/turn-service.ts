// TurnService: threads and turns. Writes go through the hot tier's atomic append.
import type { ServiceImpl } from "@connectrpc/connect";
import { newId } from "../domain/ids.js";
import { MultitaskStrategy, type TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import type { TurnDispatch } from "../tiers/hot/turn-dispatch.js";
import { callerOf, tenantFilter, tenantForNewThreads } from "../auth.js";
import { InvalidInput } from "../domain/errors.js";
import type { TurnRecord } from "../domain/records.js";
import { systemEvent } from "../tiers/hot/turn-events.js";
import type { EventLog } from "../log/event-log.js";
import { scopeOfIdempotencyKey } from "../tiers/hot/hot-log.js";
import type { ThreadEraser } from "../log/thread-eraser.js";
import { toThread, toTurn } from "./convert.js";
import { ownedThread, ownedTurn, tenantOfWrite } from "./ownership.js";
import * as v from "./validation.js";

export function turnService(deps: { log: EventLog; eraser: ThreadEraser; dispatch: TurnDispatch }): Partial<ServiceImpl<typeof TurnService>> {
  const { log } = deps;
  const { hot } = log;
  return {
    async createThread(req, ctx) {
      const tenantId = tenantForNewThreads(callerOf(ctx));
      const metadata = v.metadata("metadata", req.metadata);
      const threadId = hot.newThreadId();
      const res = await log.append({
        tenantId,
        threadId,
        create: { metadata },
        events: [systemEvent("thread.created", "", { metadata })],
      });
      return { thread: toThread(res.thread) };
    },

    async getThread(req, ctx) {
      return { thread: toThread(await ownedThread(log, callerOf(ctx), v.requireUlid("thread_id", req.threadId))) };
    },

    async submitTurn(req, ctx) {
      const caller = callerOf(ctx);
      const input = v.jsonObject("input", req.input);
      const metadata = v.metadata("metadata", req.metadata);
      const idempotencyKey = v.maxChars("idempotency_key", req.idempotencyKey, v.limits.idempotencyKeyChars);
      const strategy = multitaskStrategy(req.multitaskStrategy);
      const creating = req.threadId === "";
      const tenantId = await tenantOfWrite(log, caller, creating ? "" : req.threadId);
      const threadId = creating
        ? hot.newThreadId(idempotencyKey ? scopeOfIdempotencyKey(tenantId, "", idempotencyKey) : undefined)
        : v.requireUlid("thread_id", req.threadId);
      const turnId = newId();
      const turn: Omit<TurnRecord, "submittedSeq"> = {
        turnId,
        threadId,
        tenantId,
        status: "queued",
        input,
        error: "",
        attempt: 0,
        agentId: "",
        idempotencyKey,
        metadata,
        createdAt: 0,
        updatedAt: 0,
      };
      // The payload holds everything the turn projection needs, so it can be rebuilt from the log.
      const events = [systemEvent("turn.submitted", turnId, { input, metadata, ...(idempotencyKey ? { idempotency_key: idempotencyKey } : {}) })];
      if (creating) events.unshift(systemEvent("thread.created", "", { metadata: {} }));
      if (strategy === MultitaskStrategy.INTERRUPT && !creating) {
        await ownedThread(log, caller, threadId);
        await interruptOpenTurns(log, deps.dispatch, threadId);
      }
      const res = await log.append({
        tenantId,
        threadId,
        create: creating ? { metadata: {} } : undefined,
        submit: { turn, idempotencyKey, rejectIfBusy: strategy === MultitaskStrategy.REJECT },
        events,
      });
      if (res.kind === "duplicate-events") throw new Error("a turn submission cannot be an event retry");
      const stored = res.turn!;
      return { thread: toThread(res.thread), turn: toTurn(stored), seq: BigInt(stored.submittedSeq) };
    },

    async getTurn(req, ctx) {
      return { turn: toTurn(await ownedTurn(log, callerOf(ctx), v.requireUlid("turn_id", req.turnId))) };
    },

    async cancelTurn(req, ctx) {
      const caller = callerOf(ctx);
      const turnId = v.requireUlid("turn_id", req.turnId);
      const reason = v.maxChars("reason", req.reason, v.limits.reasonChars);
      const turn = await ownedTurn(log, caller, turnId);
      if (turn.status !== "queued" && turn.status !== "running") return { turn: toTurn(turn) };
      return { turn: toTurn(await deps.dispatch.cancel(turn.threadId, turnId, turn.tenantId, reason || "cancelled by a client")) };
    },

    async listThreads(req, ctx) {
      const caller = callerOf(ctx);
      const page = await log.listThreads(
        tenantFilter(caller),
        v.pageSize("page_size", req.pageSize, 50),
        req.pageToken,
      );
      return { threads: page.items.map(toThread), nextPageToken: page.nextPageToken };
    },

    async deleteThread(req, ctx) {
      const thread = await ownedThread(log, callerOf(ctx), v.requireUlid("thread_id", req.threadId));
      await deps.eraser.erase(thread);
      return {};
    },

    async listTurns(req, ctx) {
      const thread = await ownedThread(log, callerOf(ctx), v.requireUlid("thread_id", req.threadId));
      const page = await log.listTurns(thread.threadId, v.pageSize("page_size", req.pageSize, 50), req.pageToken);
      return { turns: page.items.map(toTurn), nextPageToken: page.nextPageToken };
    },
  };
}

function multitaskStrategy(value: MultitaskStrategy): MultitaskStrategy {
  if (value === MultitaskStrategy.UNSPECIFIED) return MultitaskStrategy.ENQUEUE;
  if (!(value in MultitaskStrategy)) throw new InvalidInput(`multitask_strategy ${value} is not one of ENQUEUE, REJECT, INTERRUPT`);
  return value;
}

/** INTERRUPT: the running turn and those queued before the new one are cancelled, so it runs next. */
async function interruptOpenTurns(log: EventLog, dispatch: TurnDispatch, threadId: string): Promise<void> {
  const turns = await log.hot.threadTurns(threadId);
  const open = turns.filter((t) => t.status === "running" || t.status === "queued").sort((a, b) => a.submittedSeq - b.submittedSeq);
  for (const t of open) await dispatch.cancel(threadId, t.turnId, undefined, "interrupted by a new turn");
}
