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

export interface WarmStore {
  /**
   * One transaction: inserts the events (a redelivered one is skipped) and
   * projects threads and turns from them. Idempotent.
   */
  persistBatch(events: StoredEvent[]): Promise<void>;
  /** Events with seq > afterSeq in seq order, at most `limit`. */
  read(threadId: string, afterSeq: number, limit: number): Promise<StoredEvent[]>;
  findEvent(eventId: string): Promise<StoredEvent | undefined>;
  /** Where each of these ids is stored, for ids that are. */
  locateEventIds(eventIds: string[]): Promise<Map<string, { threadId: string; seq: number }>>;
  listEvents(filter: EventFilter, pageSize: number, pageToken: string): Promise<Page<StoredEvent>>;
  getThread(threadId: string): Promise<ThreadRecord | undefined>;
  listThreads(tenantId: string | undefined, pageSize: number, pageToken: string): Promise<Page<ThreadRecord>>;
  getTurn(turnId: string): Promise<TurnRecord | undefined>;
  listTurns(threadId: string, pageSize: number, pageToken: string): Promise<Page<TurnRecord>>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
