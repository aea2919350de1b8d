// Tenant scoping of reads: another tenant's id is exactly as unknown as a missing one.
import type { Caller } from "../auth.js";
import { NotFound } from "../domain/errors.js";
import type { ThreadRecord, TurnRecord } from "../domain/records.js";
import type { EventLog } from "../log/event-log.js";

export function visibleTo(caller: Caller, tenantId: string): boolean {
  return caller.role === "admin" || caller.tenantId === tenantId;
}

export async function ownedThread(events: EventLog, caller: Caller, threadId: string): Promise<ThreadRecord> {
  const thread = await events.getThread(threadId);
  if (!thread || thread.status === "deleted" || !visibleTo(caller, thread.tenantId)) throw new NotFound("thread", threadId);
  return thread;
}

export async function ownedTurn(events: EventLog, caller: Caller, turnId: string): Promise<TurnRecord> {
  const turn = await events.getTurn(turnId);
  if (!turn || !visibleTo(caller, turn.tenantId)) throw new NotFound("turn", turnId);
  return turn;
}
