// Tenant scoping of reads: another tenant's id is exactly as unknown as a missing one.
import type { Caller } from "../auth.js";
import { NotFound } from "../domain/errors.js";
import type { ThreadRecord, TurnRecord } from "../domain/records.js";
import type { HotLog } from "../tiers/hot/hot-log.js";

export function visibleTo(caller: Caller, tenantId: string): boolean {
  return caller.role === "admin" || caller.tenantId === tenantId;
}

export async function ownedThread(hot: HotLog, caller: Caller, threadId: string): Promise<ThreadRecord> {
  const thread = await hot.getThread(threadId);
  if (!thread || thread.status === "deleted" || !visibleTo(caller, thread.tenantId)) throw new NotFound("thread", threadId);
  return thread;
}

export async function ownedTurn(hot: HotLog, caller: Caller, turnId: string): Promise<TurnRecord> {
  const turn = await hot.getTurn(turnId);
  if (!turn || !visibleTo(caller, turn.tenantId)) throw new NotFound("turn", turnId);
  return turn;
}
