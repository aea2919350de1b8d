// The embedded hot tier: the same contract as Redis, in process memory. Every
// append is synchronous inside one call, which makes it atomic in Node.
import { ulid } from "ulid";
import { EventIdConflict, NotFound, StaleExpectedSeq } from "../../../domain/errors.js";
import type { StoredEvent, ThreadRecord, TurnRecord } from "../../../domain/records.js";
import { ThreadFanout } from "../../../live/fanout.js";
import { type AppendCommand, type AppendResult, type HotLog, idempotencyScope } from "../hot-log.js";

interface ThreadState {
  record: ThreadRecord;
  events: StoredEvent[];
  turns: Map<string, TurnRecord>;
  openTurns: number;
}

export class MemoryHotLog implements HotLog {
  readonly live = new ThreadFanout();
  private readonly threads = new Map<string, ThreadState>();
  private readonly eventIndex = new Map<string, { threadId: string; seq: number }>();
  private readonly turnIndex = new Map<string, string>();
  private readonly idempotency = new Map<string, { threadId: string; turnId: string; expiresAt: number }>();
  private keysSinceSweep = 0;

  constructor(private readonly opts: { idempotencyTtlSeconds: number }) {}

  newThreadId(_idempotencyScope?: string): string {
    return ulid();
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

    const found: StoredEvent[] = [];
    for (const e of cmd.events) {
      if (!e.clientSuppliedId) continue;
      const where = this.eventIndex.get(e.eventId);
      if (!where) continue;
      if (where.threadId !== cmd.threadId) throw new EventIdConflict(e.eventId, `thread/seq ${where.threadId} ${where.seq}`);
      found.push(state!.events[where.seq - 1]);
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
      state = {
        record: {
          threadId: cmd.threadId,
          tenantId: cmd.tenantId,
          status: "idle",
          lastSeq: 0,
          metadata: { ...cmd.create!.metadata },
          createdAt: now,
          updatedAt: now,
        },
        events: [],
        turns: new Map(),
        openTurns: 0,
      };
      this.threads.set(cmd.threadId, state);
    }
    const appended = cmd.events.map((e, i) => {
      const event: StoredEvent = {
        eventId: e.eventId,
        threadId: cmd.threadId,
        turnId: e.turnId,
        seq: last + 1 + i,
        type: e.type,
        payload: structuredClone(e.payload),
        metadata: { ...e.metadata },
        schemaVersion: e.schemaVersion,
        createdAt: now,
        tenantId: cmd.tenantId,
        level: e.level,
      };
      state.events.push(event);
      this.eventIndex.set(e.eventId, { threadId: cmd.threadId, seq: event.seq });
      return event;
    });
    state.record.lastSeq = last + appended.length;
    state.record.updatedAt = now;

    let turn: TurnRecord | undefined;
    if (cmd.submit) {
      turn = { ...structuredClone(cmd.submit.turn), submittedSeq: state.record.lastSeq, createdAt: now, updatedAt: now };
      state.turns.set(turn.turnId, turn);
      this.turnIndex.set(turn.turnId, cmd.threadId);
      state.openTurns++;
      state.record.status = "busy";
      if (idemScope) {
        this.forgetExpiredKeys(now);
        this.idempotency.set(idemScope, {
          threadId: cmd.threadId,
          turnId: turn.turnId,
          expiresAt: now + this.opts.idempotencyTtlSeconds * 1000,
        });
      }
    }
    this.live.publish(cmd.threadId, appended.map(copy));
    const result: AppendResult = { kind: "appended", thread: copy(state.record), events: appended.map(copy) };
    if (turn) result.turn = copy(turn);
    return result;
  }

  /** Redis expires keys by itself; here a sweep now and then keeps the map from growing forever. */
  private forgetExpiredKeys(now: number): void {
    if (++this.keysSinceSweep < 1_000) return;
    this.keysSinceSweep = 0;
    for (const [scope, entry] of this.idempotency) if (entry.expiresAt <= now) this.idempotency.delete(scope);
  }

  async getThread(threadId: string): Promise<ThreadRecord | undefined> {
    const state = this.threads.get(threadId);
    return state && copy(state.record);
  }

  async getTurn(turnId: string): Promise<TurnRecord | undefined> {
    const threadId = this.turnIndex.get(turnId);
    const turn = threadId ? this.threads.get(threadId)?.turns.get(turnId) : undefined;
    return turn && copy(turn);
  }

  async read(threadId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const events = this.threads.get(threadId)?.events ?? [];
    return events.slice(Math.max(0, afterSeq), Math.max(0, afterSeq) + limit).map(copy);
  }

  async findEvent(eventId: string): Promise<StoredEvent | undefined> {
    const where = this.eventIndex.get(eventId);
    const event = where && this.threads.get(where.threadId)?.events[where.seq - 1];
    return event && copy(event);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}

// Callers get copies so nothing they mutate reaches the log.
function copy<T>(value: T): T {
  return structuredClone(value);
}
