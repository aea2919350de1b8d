// Tenant scoping of reads: another tenant's id is exactly as unknown as a missing one.
import { anyTenant, type Caller, tenantForNewThreads, visibleTo } from "../auth.js";
import { LeaseLost, NotFound } from "../domain/errors.js";
import { threadOfLease } from "../tiers/hot/turn-dispatch.js";
import type { ThreadRecord, TurnRecord } from "../domain/records.js";
import type { EventLog } from "../log/event-log.js";
import { requireUlid } from "./validation.js";

export { visibleTo };

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

/**
 * The tenant a write to `threadId` ("" = a new thread) is made as. A caller of
 * one tenant writes as it (the hot tier refuses another tenant's thread as
 * unknown); a caller of every tenant writes as the thread's owner.
 */
export async function tenantOfWrite(events: EventLog, caller: Caller, threadId: string): Promise<string> {
  if (threadId === "") return tenantForNewThreads(caller);
  if (caller.tenantId !== anyTenant) return caller.tenantId;
  const owner = await events.ownerOf(requireUlid("thread_id", threadId));
  if (owner === undefined) throw new NotFound("thread", threadId);
  return owner;
}

/** A lease of another tenant's thread is refused exactly like a lease that was never given out. */
export async function ownedLease(events: EventLog, caller: Caller, leaseId: string): Promise<string> {
  if (caller.tenantId === anyTenant) return leaseId;
  const threadId = threadOfLease(leaseId);
  const thread = threadId ? await events.getThread(threadId) : undefined;
  if (!thread || !visibleTo(caller, thread.tenantId)) throw new LeaseLost(`lease ${leaseId} no longer holds its turn (it lapsed, or the turn ended)`);
  return leaseId;
}
