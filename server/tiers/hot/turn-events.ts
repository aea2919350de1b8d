// The events eventide itself appends (`thread.created`, `turn.*`).
import type { JsonObject } from "@bufbuild/protobuf";
import { newId } from "../../domain/ids.js";
import type { EventLevel, NewEvent } from "../../domain/records.js";

const levels: Record<string, EventLevel> = { "turn.failed": "error", "turn.dead_lettered": "error", "turn.retrying": "warn" };

export function systemEvent(type: string, turnId: string, payload: JsonObject): NewEvent {
  return { eventId: newId(), clientSuppliedId: false, turnId, type, payload, metadata: {}, schemaVersion: 1, level: levels[type] ?? "info" };
}
