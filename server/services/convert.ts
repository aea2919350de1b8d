// Records (what the tiers store) to proto messages (what crosses the wire).
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  type Event,
  EventSchema,
  type Thread,
  ThreadSchema,
  ThreadStatus,
  type Turn,
  TurnSchema,
  TurnStatus,
} from "../../gen/eventide/v1/resources_pb.js";
import type { StoredEvent, ThreadRecord, TurnRecord } from "../domain/records.js";

const threadStatus: Record<ThreadRecord["status"], ThreadStatus> = {
  idle: ThreadStatus.IDLE,
  busy: ThreadStatus.BUSY,
  deleted: ThreadStatus.DELETED,
};

const turnStatus: Record<TurnRecord["status"], TurnStatus> = {
  queued: TurnStatus.QUEUED,
  running: TurnStatus.RUNNING,
  completed: TurnStatus.COMPLETED,
  failed: TurnStatus.FAILED,
  cancelled: TurnStatus.CANCELLED,
  dead_lettered: TurnStatus.DEAD_LETTERED,
};

function time(ms: number | undefined): Timestamp | undefined {
  return ms === undefined ? undefined : timestampFromMs(ms);
}

export function toEvent(e: StoredEvent): Event {
  return create(EventSchema, {
    eventId: e.eventId,
    threadId: e.threadId,
    turnId: e.turnId,
    seq: BigInt(e.seq),
    type: e.type,
    payload: e.payload,
    metadata: e.metadata,
    schemaVersion: e.schemaVersion,
    createdAt: time(e.createdAt),
    tenantId: e.tenantId,
    level: e.level,
  });
}

export function toThread(t: ThreadRecord): Thread {
  return create(ThreadSchema, {
    threadId: t.threadId,
    tenantId: t.tenantId,
    status: threadStatus[t.status],
    lastSeq: BigInt(t.lastSeq),
    metadata: t.metadata,
    createdAt: time(t.createdAt),
    updatedAt: time(t.updatedAt),
  });
}

export function toTurn(t: TurnRecord): Turn {
  return create(TurnSchema, {
    turnId: t.turnId,
    threadId: t.threadId,
    tenantId: t.tenantId,
    status: turnStatus[t.status],
    input: t.input,
    output: t.output,
    error: t.error,
    attempt: t.attempt,
    agentId: t.agentId,
    idempotencyKey: t.idempotencyKey,
    metadata: t.metadata,
    submittedSeq: BigInt(t.submittedSeq),
    createdAt: time(t.createdAt),
    startedAt: time(t.startedAt),
    endedAt: time(t.endedAt),
    updatedAt: time(t.updatedAt),
  });
}
