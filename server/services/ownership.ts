// Tenant scoping of reads: another tenant's id is exactly as unknown as a missing one,
// and is looked up the same way (by id and the caller's tenant), so it takes no less time.
import { anyTenant, type Caller, defaultTenant, tenantFilter, tenantForNewThreads, visibleTo } from "../auth.js";
import { LeaseLost, NotFound } from "../domain/errors.js";
import { threadOfLease } from "../tiers/hot/turn-dispatch.js";
import type { ThreadRecord, TurnRecord } from "../domain/records.js";
import type { EventLog } from "../log/event-log.js";
import { requireUlid } from "./validation.js";

export { visibleTo };

export async function ownedThread(events: EventLog, caller: Caller, threadId: string): Promise<ThreadRecord> {
  const thread = await events.getThread(threadId, tenantFilter(caller));
  if (!thread || thread.status === "deleted") throw new NotFound("thread", threadId);
  return thread;
}

export async function ownedTurn(events: EventLog, caller: Caller, turnId: string): Promise<TurnRecord> {
  const turn = await events.getTurn(turnId, tenantFilter(caller));
  if (!turn) throw new NotFound("turn", turnId);
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

/**
 * The tenant an event id is looked up in (ids are unique per tenant): a caller
 * of one tenant looks in its own, and finds nothing when it names another; a
 * caller of every tenant looks in the one it names, else in the default one.
 */
export function tenantOfLookup(caller: Caller, named: string): string | undefined {
  if (caller.tenantId !== anyTenant) return named === "" || named === caller.tenantId ? caller.tenantId : undefined;
  return named || defaultTenant;
}

/** A lease of another tenant's thread is refused exactly like a lease that was never given out. */
export async function ownedLease(events: EventLog, caller: Caller, leaseId: string): Promise<string> {
  if (caller.tenantId === anyTenant) return leaseId;
  const threadId = threadOfLease(leaseId);
  const thread = threadId ? await events.getThread(threadId, caller.tenantId) : undefined;
  if (!thread) throw new LeaseLost(`lease ${leaseId} no longer holds its turn (it lapsed, or the turn ended)`);
  return leaseId;
}
