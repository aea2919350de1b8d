// Turn dispatch state: per thread a queue of turns run one at a time, the
// running turn's lease, and which agent the thread sticks to. It lives in the
// hot tier beside the thread's log, so every change and the `turn.*` event
// that records it are written together (one Lua script per thread on Redis).
// Implementations: redis/redis-turn-dispatch.ts, memory/memory-turn-dispatch.ts.
import type { JsonObject } from "@bufbuild/protobuf";
import type { ThreadRecord, TurnRecord } from "../../domain/records.js";

export interface Assignment {
  turn: TurnRecord;
  thread: ThreadRecord;
  leaseId: string;
  leaseExpiresAt: number;
  attempt: number;
}

export type ClaimResult =
  | { kind: "assigned"; assignment: Assignment }
  /** The thread sticks to another agent whose lease still lives. */
  | { kind: "sticky" }
  /** Nothing to run: no queued turn, one is running, or its retry is not due yet. */
  | { kind: "none" }
  /** The thread belongs to a tenant the agent does not serve (thread tenants never change). */
  | { kind: "other-tenant"; tenantId: string };

export interface DispatchPolicy {
  leaseTtlMs: number;
  /** Attempts before a retryable failure (or a lapsed lease) dead-letters the turn. */
  maxAttempts: number;
  /** Retry n waits backoffBaseMs · 2^(n-1), at most backoffMaxMs. */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

/** What other processes learn about dispatch (Redis pub/sub; at most once, so feeds also poll). */
export type DispatchNotice =
  /** A thread has a turn to start. */
  | { kind: "ready"; threadId: string }
  /** A lease ended: its turn completed, failed, was cancelled (`cancelled`: the agent must stop) or lapsed. */
  | { kind: "lease-ended"; turnId: string; leaseId: string; cancelled: boolean };

export interface TurnDispatch {
  /** Threads whose next turn may start now, longest waiting first. */
  readyThreads(limit: number): Promise<string[]>;
  /** How many threads have a turn ready to start, every partition (the dispatch queue depth, for metrics). */
  readyCount(): Promise<number>;
  /**
   * Starts the thread's next turn for `agentId` under a new lease: `turn.started`, attempt + 1.
   * `tenantId` (undefined: any) is the tenant the agent serves; another tenant's thread is left untouched.
   */
  claim(threadId: string, agentId: string, tenantId?: string): Promise<ClaimResult>;
  /** Extends the lease; the new expiry. Throws LeaseLost or TurnCancelled. */
  renew(leaseId: string): Promise<number>;
  /** `turn.completed`; throws LeaseLost or TurnCancelled when `leaseId` no longer holds. */
  complete(turnId: string, leaseId: string, output: JsonObject): Promise<TurnRecord>;
  /**
   * Retryable: `turn.retrying` and back in the queue after a backoff, or
   * `turn.dead_lettered` after maxAttempts; otherwise `turn.failed`.
   */
  fail(turnId: string, leaseId: string, error: string, retryable: boolean): Promise<TurnRecord>;
  /**
   * The lease's agent is gone (stream dropped) or, with `onlyIfLapsed`, its
   * lease lapsed: the turn is requeued as a retryable failure. No-op when the
   * lease no longer holds.
   */
  release(leaseId: string, reason: string, onlyIfLapsed: boolean): Promise<void>;
  /**
   * A queued turn leaves the queue; a running one ends and its lease is
   * revoked. `turn.cancelled` either way. NotFound for another tenant's turn,
   * or one `threadId` does not hold
   * (tenantId undefined: any); an ended turn is returned unchanged.
   */
  cancel(threadId: string, turnId: string, tenantId: string | undefined, reason: string): Promise<TurnRecord>;
  /** Whether the lease still holds its running turn. */
  holds(leaseId: string): Promise<boolean>;
  /** Leases whose expiry passed, for the sweeper to release. */
  lapsedLeases(limit: number): Promise<string[]>;
  /** The agent left: the thread no longer waits for it. */
  unstick(threadId: string, agentId: string): Promise<void>;
  /** Notices from every process sharing the tier. */
  subscribe(listener: (notice: DispatchNotice) => void): () => void;
  close(): Promise<void>;
}

/** Lease ids carry their thread id, so a lease alone finds the thread's keys. */
export function leaseIdFor(threadId: string, nonce: string): string {
  return `${threadId}.${nonce}`;
}

export function threadOfLease(leaseId: string): string | undefined {
  const dot = leaseId.indexOf(".");
  return dot === 26 ? leaseId.slice(0, dot) : undefined;
}

export function backoffMs(policy: DispatchPolicy, attempt: number): number {
  return Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** Math.max(0, attempt - 1));
}
