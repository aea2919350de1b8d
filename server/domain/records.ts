// The shapes every tier stores and returns. Times are epoch milliseconds; the
// services turn these into proto messages at the edge (server/services/convert.ts).
import type { JsonObject } from "@bufbuild/protobuf";

export interface StoredEvent {
  eventId: string;
  threadId: string;
  turnId: string;
  seq: number;
  type: string;
  payload: JsonObject;
  metadata: Record<string, string>;
  schemaVersion: number;
  createdAt: number;
  tenantId: string;
  level: EventLevel;
  /** The payload as JSON text, when the tier read it as such (the persister writes it to Postgres as it is). */
  payloadJson?: string;
}

export const eventLevels = ["debug", "info", "warn", "error"] as const;
export type EventLevel = (typeof eventLevels)[number];

export type ThreadStatus = "idle" | "busy" | "deleted";

export interface ThreadRecord {
  threadId: string;
  tenantId: string;
  status: ThreadStatus;
  lastSeq: number;
  metadata: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

export type TurnStatus = "queued" | "running" | "completed" | "failed" | "cancelled" | "dead_lettered";

export interface TurnRecord {
  turnId: string;
  threadId: string;
  tenantId: string;
  status: TurnStatus;
  input: JsonObject;
  output?: JsonObject;
  error: string;
  attempt: number;
  agentId: string;
  idempotencyKey: string;
  metadata: Record<string, string>;
  submittedSeq: number;
  createdAt: number;
  startedAt?: number;
  endedAt?: number;
  updatedAt: number;
}

/** An event as a writer hands it to a tier: everything but seq and createdAt. */
export interface NewEvent {
  eventId: string;
  /** The client chose the id, so a retry must find the original instead of appending again. */
  clientSuppliedId: boolean;
  turnId: string;
  type: string;
  payload: JsonObject;
  metadata: Record<string, string>;
  schemaVersion: number;
  level: EventLevel;
  /** The payload as JSON text, when the caller already has it (validation measured it). */
  payloadJson?: string;
}
