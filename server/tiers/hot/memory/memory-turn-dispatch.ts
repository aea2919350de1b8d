// Turn dispatch for the embedded hot tier: the same contract as Redis, on the
// memory hot log's thread states. Each method runs synchronously between its
// checks and its writes, so it is atomic in Node.
import type { JsonObject } from "@bufbuild/protobuf";
import { newId } from "../../../domain/ids.js";
import { LeaseLost, NotFound, TurnCancelled } from "../../../domain/errors.js";
import type { TurnRecord } from "../../../domain/records.js";
import {
  backoffMs,
  type ClaimResult,
  type DispatchNotice,
  type DispatchPolicy,
  leaseIdFor,
  threadOfLease,
  type TurnDispatch,
} from "../turn-dispatch.js";
import { systemEvent } from "../turn-events.js";
import type { MemoryHotLog, ThreadState } from "./memory-hot-log.js";

export class MemoryTurnDispatch implements TurnDispatch {
  private readonly listeners = new Set<(notice: DispatchNotice) => void>();
  private readonly unlisten: () => void;

  constructor(private readonly hot: MemoryHotLog, private readonly policy: DispatchPolicy) {
    const onReady = (threadId: string) => this.notify({ kind: "ready", threadId });
    hot.readyListeners.add(onReady);
    this.unlisten = () => hot.readyListeners.delete(onReady);
  }

  async readyThreads(limit: number): Promise<string[]> {
    const now = Date.now();
    const ready: ThreadState[] = [];
    for (const state of this.hot.threadStates()) {
      const d = state.dispatch;
      if (d.queue.length > 0 && !d.running && d.notBefore <= now) ready.push(state);
    }
    ready.sort((a, b) => a.dispatch.notBefore - b.dispatch.notBefore || a.record.updatedAt - b.record.updatedAt);
    return ready.slice(0, limit).map((s) => s.record.threadId);
  }

  async readyCount(): Promise<number> {
    const now = Date.now();
    let count = 0;
    for (const { dispatch: d } of this.hot.threadStates()) if (d.queue.length > 0 && !d.running && d.notBefore <= now) count++;
    return count;
  }

  async claim(threadId: string, agentId: string, tenantId?: string): Promise<ClaimResult> {
    const state = this.hot.stateOf(threadId);
    if (state && tenantId !== undefined && state.record.tenantId !== tenantId) return { kind: "other-tenant", tenantId: state.record.tenantId };
    const now = Date.now();
    const d = state?.dispatch;
    if (!state || !d || d.running || d.queue.length === 0 || d.notBefore > now || state.record.status === "deleted") return { kind: "none" };
    if (d.sticky && d.sticky.agentId !== agentId && d.sticky.until > now) return { kind: "sticky" };
    const turn = state.turns.get(d.queue.shift()!)!;
    const leaseId = leaseIdFor(threadId, newId());
    const until = now + this.policy.leaseTtlMs;
    d.running = { turnId: turn.turnId, leaseId, agentId, until };
    d.sticky = { agentId, until };
    Object.assign(turn, { status: "running", attempt: turn.attempt + 1, agentId, startedAt: now, updatedAt: now });
    this.hot.write(state, [systemEvent("turn.started", turn.turnId, { attempt: turn.attempt, agent_id: agentId })], now);
    return {
      kind: "assigned",
      assignment: { turn: structuredClone(turn), thread: structuredClone(state.record), leaseId, leaseExpiresAt: until, attempt: turn.attempt },
    };
  }

  async renew(leaseId: string): Promise<number> {
    const { state, turn } = this.holding(leaseId);
    const until = Date.now() + this.policy.leaseTtlMs;
    state.dispatch.running!.until = until;
    state.dispatch.sticky = { agentId: turn.agentId, until };
    return until;
  }

  async complete(turnId: string, leaseId: string, output: JsonObject): Promise<TurnRecord> {
    const { state, turn } = this.holding(leaseId, turnId);
    const now = Date.now();
    this.end(state, turn, { status: "completed", output }, now);
    this.hot.write(state, [systemEvent("turn.completed", turnId, { output, attempt: turn.attempt })], now);
    this.afterEnd(state);
    return structuredClone(turn);
  }

  async fail(turnId: string, leaseId: string, error: string, retryable: boolean): Promise<TurnRecord> {
    const { state, turn } = this.holding(leaseId, turnId);
    this.failHeld(state, turn, error, retryable);
    return structuredClone(turn);
  }

  async release(leaseId: string, reason: string, onlyIfLapsed: boolean): Promise<void> {
    const state = this.hot.stateOf(threadOfLease(leaseId) ?? "");
    const running = state?.dispatch.running;
    if (!state || running?.leaseId !== leaseId || (onlyIfLapsed && running.until > Date.now())) return;
    this.failHeld(state, state.turns.get(running.turnId)!, reason, true);
  }

  async holds(leaseId: string): Promise<boolean> {
    return this.hot.stateOf(threadOfLease(leaseId) ?? "")?.dispatch.running?.leaseId === leaseId;
  }

  async cancel(threadId: string, turnId: string, tenantId: string | undefined, reason: string): Promise<TurnRecord> {
    const state = this.hot.stateOf(threadId);
    const turn = state?.turns.get(turnId);
    if (!state || !turn || (tenantId !== undefined && state.record.tenantId !== tenantId)) throw new NotFound("turn", turnId);
    const d = state.dispatch;
    const now = Date.now();
    if (turn.status === "queued") {
      if (d.queue[0] === turnId) d.notBefore = 0;
      d.queue = d.queue.filter((id) => id !== turnId);
    } else if (turn.status === "running" && d.running?.turnId === turnId) {
      this.dropLease(state, turnId, true);
    } else {
      return structuredClone(turn);
    }
    const was = turn.status;
    this.end(state, turn, { status: "cancelled" }, now);
    this.hot.write(state, [systemEvent("turn.cancelled", turnId, { reason, was })], now);
    this.afterEnd(state);
    return structuredClone(turn);
  }

  async lapsedLeases(limit: number): Promise<string[]> {
    const now = Date.now();
    const lapsed: string[] = [];
    for (const state of this.hot.threadStates()) {
      const running = state.dispatch.running;
      if (running && running.until <= now) lapsed.push(running.leaseId);
      if (lapsed.length >= limit) break;
    }
    return lapsed;
  }

  async unstick(threadId: string, agentId: string): Promise<void> {
    const d = this.hot.stateOf(threadId)?.dispatch;
    if (d?.sticky?.agentId === agentId) d.sticky = undefined;
  }

  subscribe(listener: (notice: DispatchNotice) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.unlisten();
  }

  /** The thread and turn that `leaseId` holds; LeaseLost or TurnCancelled otherwise. */
  private holding(leaseId: string, turnId?: string): { state: ThreadState; turn: TurnRecord } {
    const state = this.hot.stateOf(threadOfLease(leaseId) ?? "");
    const running = state?.dispatch.running;
    if (state && running?.leaseId === leaseId && (turnId === undefined || running.turnId === turnId)) {
      return { state, turn: state.turns.get(running.turnId)! };
    }
    const turn = turnId ? state?.turns.get(turnId) : undefined;
    if (turn?.status === "cancelled" || state?.dispatch.cancelledLeases.has(leaseId)) {
      throw new TurnCancelled(`the turn under lease ${leaseId} was cancelled`);
    }
    throw new LeaseLost(`lease ${leaseId} does not hold ${turnId ? `turn ${turnId}` : "a running turn"} (it lapsed, or the turn ended)`);
  }

  private failHeld(state: ThreadState, turn: TurnRecord, error: string, retryable: boolean): void {
    const now = Date.now();
    if (retryable && turn.attempt < this.policy.maxAttempts) {
      const retryAt = now + backoffMs(this.policy, turn.attempt);
      this.dropLease(state, turn.turnId, false);
      state.dispatch.queue.unshift(turn.turnId);
      state.dispatch.notBefore = retryAt;
      // Another agent may take the retry at once: the one that failed it is not waited for.
      state.dispatch.sticky = undefined;
      Object.assign(turn, { status: "queued", error, updatedAt: now });
      this.hot.write(state, [systemEvent("turn.retrying", turn.turnId, { attempt: turn.attempt, error, retry_at_ms: retryAt })], now);
      // Due later: feeds find it when they poll.
      return;
    }
    const type = retryable ? "turn.dead_lettered" : "turn.failed";
    this.end(state, turn, { status: retryable ? "dead_lettered" : "failed", error }, now);
    this.hot.write(state, [systemEvent(type, turn.turnId, { attempt: turn.attempt, error })], now);
    this.afterEnd(state);
  }

  private end(state: ThreadState, turn: TurnRecord, change: Partial<TurnRecord>, now: number): void {
    this.dropLease(state, turn.turnId, false);
    Object.assign(turn, change, { endedAt: now, updatedAt: now });
    state.openTurns = Math.max(0, state.openTurns - 1);
    if (state.openTurns === 0) state.record.status = "idle";
  }

  /** The next queued turn may start (when a retry's backoff allows). */
  private afterEnd(state: ThreadState): void {
    const d = state.dispatch;
    if (d.queue.length > 0 && d.notBefore <= Date.now()) this.notify({ kind: "ready", threadId: state.record.threadId });
  }

  /** The running turn's lease ends, whatever the outcome; its agent's feed learns it. */
  private dropLease(state: ThreadState, turnId: string, cancelled: boolean): void {
    const running = state.dispatch.running;
    if (running?.turnId !== turnId) return;
    state.dispatch.running = undefined;
    if (cancelled) state.dispatch.cancelledLeases.add(running.leaseId);
    this.notify({ kind: "lease-ended", turnId, leaseId: running.leaseId, cancelled });
  }

  private notify(notice: DispatchNotice): void {
    for (const listener of this.listeners) listener(notice);
  }
}
