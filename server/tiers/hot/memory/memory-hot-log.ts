// The embedded hot tier: the same contract as Redis, in process memory. Every
// append is synchronous inside one call, which makes it atomic in Node.
import { newId } from "../../../domain/ids.js";
import { waitFor } from "../../../domain/wait.js";
import { EventIdConflict, LeaseLost, NotFound, StaleExpectedSeq, ThreadBusy, TurnCancelled, TurnNotStarted } from "../../../domain/errors.js";
import type { NewEvent, StoredEvent, ThreadRecord, TurnRecord } from "../../../domain/records.js";
import { ThreadFanout } from "../../../live/fanout.js";
import {
  type AppendCommand,
  type AppendResult,
  eventIdKey,
  type FeedBatch,
  type HotLog,
  idempotencyScope,
  type PartitionLeases,
  type PersistFeed,
} from "../hot-log.js";

export interface ThreadState {
  record: ThreadRecord;
  /** events[i].seq === firstSeq + i; the persister trims the front. */
  events: StoredEvent[];
  firstSeq: number;
  persistedSeq: number;
  turns: Map<string, TurnRecord>;
  openTurns: number;
  dispatch: DispatchState;
}

/** The thread's side of turn dispatch (see memory-turn-dispatch.ts). */
export interface DispatchState {
  /** Turn ids waiting, in the order they run. */
  queue: string[];
  /** The queue's head may not start before this (retry backoff). */
  notBefore: number;
  running?: { turnId: string; leaseId: string; agentId: string; until: number };
  sticky?: { agentId: string; until: number };
  /** Leases whose turn a client cancelled: their agent hears CANCELLED, not "lost". */
  cancelledLeases: Set<string>;
}

interface LogEntry {
  id: string;
  threadId: string;
  from: number;
  to: number;
}

/** The embedded hot tier is one process's memory: a single partition, a single persister. */
export class MemoryHotLog implements HotLog, PersistFeed {
  readonly partitions = 1;
  private readonly unpersisted: LogEntry[] = [];
  private nextEntryId = 1;
  private wakePersister?: () => void;
  readonly live = new ThreadFanout();
  private readonly threads = new Map<string, ThreadState>();
  /** eventIdKey(tenant, event_id) → where the event is. */
  private readonly eventIndex = new Map<string, { threadId: string; seq: number }>();
  private readonly turnIndex = new Map<string, string>();
  private readonly idempotency = new Map<string, { threadId: string; turnId: string; expiresAt: number }>();
  private keysSinceSweep = 0;
  /** Told the id of a thread that gained a turn to start (memory-turn-dispatch.ts listens). */
  readonly readyListeners = new Set<(threadId: string) => void>();

  constructor(private readonly opts: { idempotencyTtlSeconds: number }) {}

  newThreadId(_idempotencyScope?: string): string {
    return newId();
  }

  async append(cmd: AppendCommand): Promise<AppendResult> {
    const idemScope = idempotencyScope(cmd);
    const now = Date.now();
    if (idemScope) {
      const prior = this.idempotency.get(idemScope);
      if (prior && prior.expiresAt > now) {
        const state = this.threads.get(prior.threadId)!;
        return { kind: "duplicate-turn", thread: copy(state.record), turn: copy(state.turns.get(prior.turnId)!) };
      }
    }
    let state = this.threads.get(cmd.threadId);
    if (cmd.create) {
      if (state) throw new EventIdConflict(cmd.threadId, "thread id already in use");
    } else if (!state || state.record.tenantId !== cmd.tenantId || state.record.status === "deleted") {
      throw new NotFound("thread", cmd.threadId);
    }

    if (cmd.turnId && !state?.turns.has(cmd.turnId)) throw new NotFound("turn", cmd.turnId);
    if (cmd.turnId) checkLease(state!, cmd.turnId, cmd.leaseId);
    if (cmd.submit?.rejectIfBusy && state && state.openTurns > 0) {
      throw new ThreadBusy(`thread ${cmd.threadId} has a queued or running turn; nothing was written`);
    }

    const found: StoredEvent[] = [];
    for (const e of cmd.events) {
      if (!e.clientSuppliedId) continue;
      const where = this.eventIndex.get(eventIdKey(cmd.tenantId, e.eventId));
      if (!where) continue;
      if (where.threadId !== cmd.threadId) throw new EventIdConflict(e.eventId, `thread/seq ${where.threadId} ${where.seq}`);
      found.push(state!.events[where.seq - state!.firstSeq]);
    }
    if (found.length > 0) {
      if (found.length !== cmd.events.length) throw new EventIdConflict(found[0].eventId, "some ids of this batch are new");
      return { kind: "duplicate-events", thread: copy(state!.record), events: found.map(copy) };
    }

    const last = state?.record.lastSeq ?? 0;
    if (cmd.expectedLastSeq !== undefined && cmd.expectedLastSeq !== last) {
      throw new StaleExpectedSeq(cmd.expectedLastSeq, last);
    }

    if (!state) {
      state = threadState({
        threadId: cmd.threadId,
        tenantId: cmd.tenantId,
        status: "idle",
        lastSeq: 0,
        metadata: { ...cmd.create!.metadata },
        createdAt: now,
        updatedAt: now,
      });
      this.threads.set(cmd.threadId, state);
    }
    const appended = this.write(state, cmd.events, now);

    let turn: TurnRecord | undefined;
    if (cmd.submit) {
      turn = { ...structuredClone(cmd.submit.turn), submittedSeq: state.record.lastSeq, createdAt: now, updatedAt: now };
      state.turns.set(turn.turnId, turn);
      this.turnIndex.set(turn.turnId, cmd.threadId);
      state.openTurns++;
      state.record.status = "busy";
      state.dispatch.queue.push(turn.turnId);
      if (idemScope) {
        this.forgetExpiredKeys(now);
        this.idempotency.set(idemScope, {
          threadId: cmd.threadId,
          turnId: turn.turnId,
          expiresAt: now + this.opts.idempotencyTtlSeconds * 1000,
        });
      }
    }
    if (turn && !state.dispatch.running) for (const listener of this.readyListeners) listener(cmd.threadId);
    const result: AppendResult = { kind: "appended", thread: copy(state.record), events: appended.map(copy) };
    if (turn) result.turn = copy(turn);
    return result;
  }

  /** Appends the events after the thread's last seq and publishes them live; no checks (the caller made them). */
  write(state: ThreadState, events: NewEvent[], now: number): StoredEvent[] {
    const last = state.record.lastSeq;
    const appended = events.map((e, i) => {
      const event: StoredEvent = {
        eventId: e.eventId,
        threadId: state.record.threadId,
        turnId: e.turnId,
        seq: last + 1 + i,
        type: e.type,
        payload: structuredClone(e.payload),
        metadata: { ...e.metadata },
        schemaVersion: e.schemaVersion,
        createdAt: now,
        tenantId: state.record.tenantId,
        level: e.level,
      };
      state.events.push(event);
      this.eventIndex.set(eventIdKey(event.tenantId, e.eventId), { threadId: state.record.threadId, seq: event.seq });
      return event;
    });
    state.record.lastSeq = last + appended.length;
    state.record.updatedAt = now;
    this.unpersisted.push({ id: String(this.nextEntryId++), threadId: state.record.threadId, from: last + 1, to: state.record.lastSeq });
    this.wakePersister?.();
    this.live.publish(state.record.threadId, appended.map(copy));
    return appended;
  }

  /** The live state of a thread, for the dispatcher of this tier. */
  stateOf(threadId: string): ThreadState | undefined {
    return this.threads.get(threadId);
  }

  threadStates(): IterableIterator<ThreadState> {
    return this.threads.values();
  }

  /** Redis expires keys by itself; here a sweep now and then keeps the map from growing forever. */
  private forgetExpiredKeys(now: number): void {
    if (++this.keysSinceSweep < 1_000) return;
    this.keysSinceSweep = 0;
    for (const [scope, entry] of this.idempotency) if (entry.expiresAt <= now) this.idempotency.delete(scope);
  }

  async restoreThread(thread: ThreadRecord, turns: TurnRecord[]): Promise<void> {
    if (this.threads.has(thread.threadId)) return;
    this.threads.set(thread.threadId, threadState(copy(thread), turns.map(copy)));
    for (const t of turns) this.turnIndex.set(t.turnId, thread.threadId);
  }

  async deleteThread(threadId: string): Promise<void> {
    const state = this.threads.get(threadId);
    if (!state) {
      this.threads.set(
        threadId,
        threadState({ threadId, tenantId: "", status: "deleted", lastSeq: 0, metadata: {}, createdAt: 0, updatedAt: 0 }),
      );
      return;
    }
    for (const e of state.events) this.eventIndex.delete(eventIdKey(e.tenantId, e.eventId));
    for (const turnId of state.turns.keys()) this.turnIndex.delete(turnId);
    state.events = [];
    state.turns.clear();
    state.openTurns = 0;
    state.dispatch = { queue: [], notBefore: 0, cancelledLeases: new Set() };
    state.record = { ...state.record, status: "deleted", metadata: {} };
  }

  async getThread(threadId: string): Promise<ThreadRecord | undefined> {
    const state = this.threads.get(threadId);
    return state && copy(state.record);
  }

  async getTurn(turnId: string, tenantId?: string): Promise<TurnRecord | undefined> {
    const threadId = this.turnIndex.get(turnId);
    const turn = threadId ? this.threads.get(threadId)?.turns.get(turnId) : undefined;
    return turn && (tenantId === undefined || turn.tenantId === tenantId) ? copy(turn) : undefined;
  }

  async threadTurns(threadId: string): Promise<TurnRecord[]> {
    return [...(this.threads.get(threadId)?.turns.values() ?? [])].map(copy);
  }

  async read(threadId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const state = this.threads.get(threadId);
    if (!state) return [];
    const start = Math.max(0, afterSeq + 1 - state.firstSeq);
    return state.events.slice(start, start + limit).map(copy);
  }

  async findEvent(tenantId: string, eventId: string): Promise<StoredEvent | undefined> {
    const where = this.eventIndex.get(eventIdKey(tenantId, eventId));
    const state = where && this.threads.get(where.threadId);
    const event = state && state.events[where.seq - state.firstSeq];
    return event && copy(event);
  }

  async adopt(): Promise<void> {}

  async nextBatch(_partitions: number[], _consumer: string, maxEvents: number, waitMs: number, signal: AbortSignal): Promise<FeedBatch> {
    if (this.unpersisted.length === 0 && !signal.aborted) {
      const wait = waitFor(waitMs, signal);
      this.wakePersister = wait.wake;
      await wait.done;
      this.wakePersister = undefined;
    }
    // One consumer: what it read and has not acknowledged is simply read again.
    const taken: LogEntry[] = [];
    let size = 0;
    for (const entry of this.unpersisted) {
      if (size > 0 && size + entry.to - entry.from + 1 > maxEvents) break;
      size += entry.to - entry.from + 1;
      taken.push(entry);
    }
    const namedThrough = new Map<string, number>();
    for (const entry of taken) namedThrough.set(entry.threadId, Math.max(namedThrough.get(entry.threadId) ?? 0, entry.to));
    const events = (await Promise.all(taken.map((entry) => this.readRange(entry.threadId, entry.from, entry.to)))).flat();
    return { entries: new Map([[0, taken.map((e) => e.id)]]), entryThreads: new Map([[0, taken.map((e) => e.threadId)]]), events, namedThrough };
  }

  async readRange(threadId: string, fromSeq: number, toSeq: number): Promise<StoredEvent[]> {
    const state = this.threads.get(threadId);
    if (!state) return [];
    return state.events.slice(Math.max(0, fromSeq - state.firstSeq), Math.max(0, toSeq - state.firstSeq + 1)).map(copy);
  }


  async ack(batch: FeedBatch, held: ReadonlySet<string> = new Set()): Promise<void> {
    const threads = batch.entryThreads.get(0) ?? [];
    const done = new Set((batch.entries.get(0) ?? []).filter((_, i) => !held.has(threads[i])));
    for (let i = this.unpersisted.length - 1; i >= 0; i--) if (done.has(this.unpersisted[i].id)) this.unpersisted.splice(i, 1);
  }

  async markPersisted(threadId: string, seq: number, window: number): Promise<void> {
    const state = this.threads.get(threadId);
    if (!state) return;
    state.persistedSeq = Math.max(state.persistedSeq, seq);
    const keepFrom = state.persistedSeq - window + 1;
    const drop = keepFrom - state.firstSeq;
    if (drop <= 0) return;
    for (const e of state.events.splice(0, drop)) this.eventIndex.delete(eventIdKey(e.tenantId, e.eventId));
    state.firstSeq = keepFrom;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}

// Callers get copies so nothing they mutate reaches the log.
function copy<T>(value: T): T {
  return structuredClone(value);
}

/** A thread with no events in memory: its log stands at record.lastSeq, all of it persisted. */
function threadState(record: ThreadRecord, turns: TurnRecord[] = []): ThreadState {
  return {
    record,
    events: [],
    firstSeq: record.lastSeq + 1,
    persistedSeq: record.lastSeq,
    turns: new Map(turns.map((t) => [t.turnId, t])),
    openTurns: turns.filter((t) => t.status === "queued" || t.status === "running").length,
    dispatch: restoredDispatch(turns),
  };
}

/**
 * Dispatch state rebuilt from turns (the warm projection): open turns queue
 * in submission order; a turn that was running has lost its lease (the tier
 * that held it is gone), so the sweeper requeues it as a lapsed lease.
 */
function restoredDispatch(turns: TurnRecord[]): DispatchState {
  const open = turns.filter((t) => t.status === "queued" || t.status === "running").sort((a, b) => a.submittedSeq - b.submittedSeq);
  const running = open.find((t) => t.status === "running");
  return {
    queue: open.filter((t) => t !== running).map((t) => t.turnId),
    notBefore: 0,
    cancelledLeases: new Set(),
    running: running && { turnId: running.turnId, leaseId: `${running.threadId}.restored`, agentId: running.agentId, until: 0 },
  };
}

/** Fencing: appends to a running turn must carry its lease; a queued turn has no events yet. */
function checkLease(state: ThreadState, turnId: string, leaseId: string | undefined): void {
  const running = state.dispatch.running;
  if (running?.turnId === turnId) {
    if (leaseId === running.leaseId) return;
    throw new LeaseLost(leaseId ? `lease ${leaseId} does not hold turn ${turnId}; nothing was written` : `turn ${turnId} is running: lease_id is required`);
  }
  if (!leaseId) {
    if (state.turns.get(turnId)?.status === "queued") throw new TurnNotStarted(turnId);
    return;
  }
  if (state.turns.get(turnId)?.status === "cancelled") throw new TurnCancelled(`turn ${turnId} was cancelled; nothing was written`);
  throw new LeaseLost(`lease ${leaseId} does not hold turn ${turnId}; nothing was written`);
}

/** Leases within one process (the embedded default and tests). */
export class MemoryPartitionLeases implements PartitionLeases {
  private readonly held = new Map<number, { owner: string; until: number }>();
  private readonly workers = new Map<string, number>();

  async acquire(p: number, owner: string, ttlMs: number): Promise<boolean> {
    const lease = this.held.get(p);
    if (lease && lease.until > Date.now() && lease.owner !== owner) return false;
    this.held.set(p, { owner, until: Date.now() + ttlMs });
    return true;
  }

  async renew(p: number, owner: string, ttlMs: number): Promise<boolean> {
    const lease = this.held.get(p);
    if (!lease || lease.owner !== owner || lease.until <= Date.now()) return false;
    lease.until = Date.now() + ttlMs;
    return true;
  }

  async release(p: number, owner: string): Promise<void> {
    if (this.held.get(p)?.owner === owner) this.held.delete(p);
  }

  async heartbeat(owner: string, ttlMs: number): Promise<number> {
    const now = Date.now();
    this.workers.set(owner, now + ttlMs);
    for (const [w, until] of this.workers) if (until <= now) this.workers.delete(w);
    return this.workers.size;
  }
}
