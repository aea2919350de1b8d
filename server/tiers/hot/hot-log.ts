// The hot tier: seq assignment, the recent window of every thread's log, and
// the live feed. Implementations: redis/ (production) and memory/ (embedded).
import type { NewEvent, StoredEvent, ThreadRecord, TurnRecord } from "../../domain/records.js";

export interface AppendCommand {
  tenantId: string;
  threadId: string;
  /** Create the thread with these labels; the thread must not exist yet. */
  create?: { metadata: Record<string, string> };
  /** Register a new turn whose `turn.submitted` is the batch's last event. */
  submit?: { turn: Omit<TurnRecord, "submittedSeq">; idempotencyKey: string; rejectIfBusy?: boolean };
  /** The events belong to this turn, which the thread must hold (NotFound otherwise). */
  turnId?: string;
  /** The agent's lease: required while `turnId` runs, and must be its current one (fencing). */
  leaseId?: string;
  /** Append only if the thread's last seq is this. */
  expectedLastSeq?: number;
  events: NewEvent[];
  /** The tier's checkEventIds already ran for this command: append() does not run it again. */
  eventIdsChecked?: boolean;
}

export type AppendResult =
  | { kind: "appended"; thread: ThreadRecord; events: StoredEvent[]; turn?: TurnRecord }
  /** Every client event_id was appended before: the original events, nothing written. */
  | { kind: "duplicate-events"; thread: ThreadRecord; events: StoredEvent[] }
  /** The idempotency key was used before: the original turn, nothing written. */
  | { kind: "duplicate-turn"; thread: ThreadRecord; turn: TurnRecord };

export interface HotLog {
  /**
   * A fresh thread id. With an idempotency scope, one that lands in the scope's
   * partition, so the key and the new thread's keys are written by one script.
   */
  newThreadId(idempotencyScope?: string): string;
  /** Atomically checks and appends; throws NotFound, StaleExpectedSeq or EventIdConflict. */
  append(cmd: AppendCommand): Promise<AppendResult>;
  /**
   * The part of append()'s checks that only reads and needs no atomicity (on Redis: client
   * event ids used in other partitions, which the append script cannot see): run beside the
   * caller's own checks, then append() with `eventIdsChecked`. Throws EventIdConflict.
   */
  checkEventIds?(cmd: AppendCommand): Promise<void>;
  /** The thread, or undefined for an unknown id. Tenant checks are the caller's. */
  getThread(threadId: string): Promise<ThreadRecord | undefined>;
  /** The turn; with a tenant, only if it is that tenant's, found by the same lookups an unknown id takes. */
  getTurn(turnId: string, tenantId?: string): Promise<TurnRecord | undefined>;
  /** The thread's turns the hot tier holds (recent or not yet persisted), with their live dispatch state. */
  threadTurns(threadId: string): Promise<TurnRecord[]>;
  /** Events with seq > afterSeq in seq order, at most `limit`. */
  read(threadId: string, afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /** The tenant's event with this id, if the hot window holds it (event ids are unique per tenant). */
  findEvent(tenantId: string, eventId: string): Promise<StoredEvent | undefined>;
  /**
   * Re-seeds a thread the hot tier lost, from the warm tier's record, so its
   * seqs continue where the log stands. No-op when the thread is present.
   */
  restoreThread(thread: ThreadRecord, turns: TurnRecord[]): Promise<void>;
  /** Erases the thread's events and turns and leaves a tombstone (status "deleted"). */
  deleteThread(threadId: string): Promise<void>;
  /** Where the live feed comes from: appends of every process reach it. */
  readonly live: LiveSource;
  /** Round-trips to the backing store; throws when it is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Live appended events, per thread, in seq order; "resync" when some were missed. */
export interface LiveSource {
  subscribe(threadId: string, onUpdate: (update: StoredEvent[] | "resync") => void): () => void;
}

/** Idempotency keys are scoped to the thread, or to the tenant ("" thread) when SubmitTurn creates the thread. */
export function scopeOfIdempotencyKey(tenantId: string, threadId: string, key: string): string {
  return JSON.stringify([tenantId, threadId, key]);
}

/**
 * Client event ids are unique per tenant: the hot tiers index an event as
 * `<tenant>\0<event_id>` (neither holds a NUL), so another tenant's id is
 * simply not there. The Lua scripts build the same field.
 */
export function eventIdKey(tenantId: string, eventId: string): string {
  return `${tenantId}\u0000${eventId}`;
}

export function idempotencyScope(cmd: AppendCommand): string | undefined {
  if (!cmd.submit?.idempotencyKey) return undefined;
  return scopeOfIdempotencyKey(cmd.tenantId, cmd.create ? "" : cmd.threadId, cmd.submit.idempotencyKey);
}

/** Appended entries of one partition log that the persister has not acknowledged yet. */
export interface FeedBatch {
  /** Per partition, the log entry ids to acknowledge after commit. */
  entries: Map<number, string[]>;
  /** Per partition, the thread each of those entries names (same order). */
  entryThreads: Map<number, string[]>;
  /** Their events, in seq order per thread. */
  events: StoredEvent[];
  /**
   * Per thread, the last seq its entries name. Events the hot stream no longer
   * held are missing from `events`; the warm store then refuses the batch
   * unless they are persisted already, so an entry is never acknowledged
   * without its events.
   */
  namedThrough: Map<string, number>;
}

/**
 * The persister's side of the hot tier: a consumer group over the partition
 * logs. One consumer owns a partition at a time (see PartitionLeases), so
 * each thread is persisted in seq order.
 */
export interface PersistFeed {
  readonly partitions: number;
  /**
   * Takes over partition p for `consumer`: entries another consumer read but
   * never acknowledged (it died, or read them as the partition left it) and
   * idle for `minIdleMs` become this consumer's, to be read first. An owner
   * calls it again now and then with a minimum idle time, for entries
   * delivered to a former owner after it took the partition.
   */
  adopt(p: number, consumer: string, minIdleMs?: number): Promise<void>;
  /**
   * Unacknowledged entries of the owned partitions holding up to `maxEvents`
   * events (at least one entry), waiting up to `waitMs` for any. Every entry
   * this consumer has read and not acknowledged is handed out in some batch:
   * none is left pending unseen, whatever the partitions do between calls.
   */
  nextBatch(partitions: number[], consumer: string, maxEvents: number, waitMs: number, signal: AbortSignal): Promise<FeedBatch>;
  /**
   * After commit: the entries are done, but those naming a `held` thread (one
   * with a hole nothing can fill): they stay pending, handed out, and come
   * round again when an adoption finds them idle, while the rest of their
   * partition goes on.
   */
  ack(batch: FeedBatch, held?: ReadonlySet<string>): Promise<void>;
  /** The thread's events fromSeq..toSeq that the hot stream still holds (a gap's events, read again). */
  readRange(threadId: string, fromSeq: number, toSeq: number): Promise<StoredEvent[]>;
  /** After commit: the thread is persisted through `seq`; trim its hot stream to `window` events below that. */
  markPersisted(threadId: string, seq: number, window: number): Promise<void>;
}

/** Who persists which partition: an expiring lease per partition. */
export interface PartitionLeases {
  acquire(p: number, owner: string, ttlMs: number): Promise<boolean>;
  /** False when the lease was lost (expired and taken). */
  renew(p: number, owner: string, ttlMs: number): Promise<boolean>;
  release(p: number, owner: string): Promise<void>;
  /** Announces a live worker and counts the live ones, for a fair share of partitions. */
  heartbeat(owner: string, ttlMs: number): Promise<number>;
}
