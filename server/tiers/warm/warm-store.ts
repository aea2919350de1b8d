// The warm tier: Postgres, the system of record. One implementation
// (postgres/), reached over the wire protocol both for a real server and for
// embedded PGlite, so the same SQL runs everywhere.
import type { StoredEvent, ThreadRecord, TurnRecord } from "../../domain/records.js";

export interface EventFilter {
  threadId?: string;
  turnId?: string;
  /** Type prefixes; empty = every type. */
  types: string[];
  tenantId?: string;
  createdAfter?: number;
  createdBefore?: number;
  afterSeq?: number;
}

export interface Page<T> {
  items: T[];
  /** Opaque; empty on the last page. */
  nextPageToken: string;
}

/** One archived object: a contiguous seq range of one thread (an `event_archives` row). */
export interface ArchiveRecord {
  archiveId: string;
  threadId: string;
  tenantId: string;
  fromSeq: number;
  toSeq: number;
  objectKey: string;
  eventCount: number;
  bytes: number;
  sha256: string;
  createdAt: number;
}

export interface WarmStore {
  /**
   * One transaction: inserts the events (a redelivered one is skipped) and
   * projects threads and turns from them. Idempotent. A thread's persisted
   * log only ever grows contiguously: when the batch would leave a hole (its
   * first new seq is not the thread's persisted seq + 1, it skips a seq, or
   * it stops short of `namedThrough`, the last seq its log entries name),
   * nothing is written and PersistGap names every missing range.
   */
  persistBatch(events: StoredEvent[], namedThrough?: ReadonlyMap<string, number>): Promise<void>;
  /** Events with seq > afterSeq in seq order, at most `limit` (1,000 at most: a page is held whole). */
  read(threadId: string, afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /** The tenant's event with this id (event ids are unique per tenant); undefined for another tenant's. */
  findEvent(tenantId: string, eventId: string): Promise<StoredEvent | undefined>;
  /** Where each of these ids of the tenant is stored (persisted or archived), for ids that are. */
  locateEventIds(tenantId: string, eventIds: string[]): Promise<Map<string, { threadId: string; seq: number }>>;
  listEvents(filter: EventFilter, pageSize: number, pageToken: string): Promise<Page<StoredEvent>>;
  /** The thread; with a tenant, only if it is that tenant's (looked up by both, so another tenant's costs what an unknown id does). */
  getThread(threadId: string, tenantId?: string): Promise<ThreadRecord | undefined>;
  listThreads(tenantId: string | undefined, pageSize: number, pageToken: string): Promise<Page<ThreadRecord>>;
  /** The turn; with a tenant, only if it is that tenant's (as getThread). */
  getTurn(turnId: string, tenantId?: string): Promise<TurnRecord | undefined>;
  listTurns(threadId: string, pageSize: number, pageToken: string): Promise<Page<TurnRecord>>;
  /** Threads with a queued or running turn, after `afterThreadId`, in id order: dispatch state to rebuild after a hot-tier loss. */
  threadsWithOpenTurns(afterThreadId: string, limit: number): Promise<string[]>;
  /** The archive holding `seq`, if any. */
  findArchive(threadId: string, seq: number): Promise<ArchiveRecord | undefined>;
  listArchives(threadId: string): Promise<ArchiveRecord[]>;
  getArchive(archiveId: string): Promise<ArchiveRecord | undefined>;
  /**
   * The oldest persisted events of a thread, contiguous from its first
   * unarchived seq, up to `upToSeq` and at most `max`.
   */
  oldestEvents(threadId: string, upToSeq: number, max: number): Promise<StoredEvent[]>;
  /**
   * One transaction: records the archive and deletes its events. A second
   * archiver committing the same range changes nothing (unique thread/from_seq).
   */
  commitArchive(archive: ArchiveRecord): Promise<boolean>;
  /** Runs `work` while holding the thread's archive lease; undefined when another archiver holds it. */
  withArchiveLease<T>(threadId: string, leaseMs: number, work: () => Promise<T>): Promise<T | undefined>;
  /** Threads with persisted events created before `before`, or idle since then (archiver policy). */
  archiveCandidates(before: number, limit: number): Promise<string[]>;
  /** The newest persisted seq of a thread created before `before` (0 for none). */
  lastSeqBefore(threadId: string, before: number): Promise<number>;
  /** Threads idle since `before` (retention), not deleted yet. */
  idleThreads(before: number, limit: number): Promise<string[]>;
  /**
   * Erases a thread's rows (events, turns, archive rows) and leaves a
   * tombstone thread row; returns the archive object keys it had.
   */
  eraseThread(threadId: string, tenantId: string): Promise<string[]>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
