// The original eventide's agent-event envelope (`spec_version`
// "agent-events/1.0") and its mapping onto eventide's events. Envelope fields
// eventide has no column for (content_type, source, trace, tags, the writer's
// ts) travel in the event's metadata and come back out on reads.
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Event, EventInputSchema } from "../../gen/eventide/v1/resources_pb.js";
import { BadRequest } from "./http-replies.js";

export const specVersion = "agent-events/1.0";

export interface AgentEventEnvelope {
  spec_version: string;
  event_id: string;
  thread_id: string;
  turn_id: string | null;
  seq: number;
  ts: string;
  type: string;
  level: string;
  payload: JsonObject;
  content_type?: string;
  source?: string;
  trace?: JsonValue;
  tags?: JsonValue;
}

/** Metadata keys that carry envelope fields. */
const carried = { contentType: "content_type", source: "source", trace: "trace", tags: "tags", ts: "ts" } as const;

/** The envelope is malformed (400). */
export class EnvelopeError extends BadRequest {}

/** What an `{"event": {...}}` body asks to append. The seq is always eventide's to assign. */
export interface EnvelopeAppend {
  threadId: string;
  turnId: string;
  input: MessageInitShape<typeof EventInputSchema>;
}

export function fromEnvelope(body: unknown): EnvelopeAppend {
  if (!isObject(body) || !isObject(body.event)) throw new EnvelopeError('the body must be {"event": {…}} with an agent-event envelope');
  const e = body.event;
  if (e.spec_version !== undefined && !(typeof e.spec_version === "string" && /^agent-events\/1(\.\d+)?$/.test(e.spec_version))) {
    throw new EnvelopeError(`event.spec_version must be "${specVersion}", got ${JSON.stringify(e.spec_version)}`);
  }
  const threadId = stringField(e, "thread_id", true);
  const type = stringField(e, "type", true);
  const payload = e.payload === undefined || e.payload === null ? {} : e.payload;
  if (!isObject(payload)) throw new EnvelopeError("event.payload must be a JSON object");
  const metadata: Record<string, string> = {};
  const ts = stringField(e, "ts", false);
  if (ts) {
    if (Number.isNaN(Date.parse(ts))) throw new EnvelopeError(`event.ts must be an RFC 3339 time, got ${JSON.stringify(ts)}`);
    metadata[carried.ts] = ts;
  }
  const contentType = stringField(e, "content_type", false);
  if (contentType) metadata[carried.contentType] = contentType;
  const source = stringField(e, "source", false);
  if (source) metadata[carried.source] = source;
  if (e.trace !== undefined && e.trace !== null) metadata[carried.trace] = JSON.stringify(e.trace);
  if (e.tags !== undefined && e.tags !== null) metadata[carried.tags] = JSON.stringify(e.tags);
  return {
    threadId,
    turnId: stringField(e, "turn_id", false),
    input: {
      eventId: stringField(e, "event_id", false),
      type,
      level: stringField(e, "level", false),
      payload: payload as JsonObject,
      metadata,
    },
  };
}

export function toEnvelope(event: Event): AgentEventEnvelope {
  const m = event.metadata;
  const envelope: AgentEventEnvelope = {
    spec_version: specVersion,
    event_id: event.eventId,
    thread_id: event.threadId,
    turn_id: event.turnId || null,
    seq: Number(event.seq),
    ts: m[carried.ts] ?? (event.createdAt ? timestampDate(event.createdAt).toISOString() : ""),
    type: event.type,
    level: event.level || "info",
    payload: event.payload ?? {},
  };
  if (m[carried.contentType]) envelope.content_type = m[carried.contentType];
  if (m[carried.source]) envelope.source = m[carried.source];
  if (m[carried.trace]) envelope.trace = parseOr(m[carried.trace]);
  if (m[carried.tags]) envelope.tags = parseOr(m[carried.tags]);
  return envelope;
}

function parseOr(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

function stringField(e: Record<string, unknown>, name: string, required: boolean): string {
  const value = e[name];
  if (value === undefined || value === null || value === "") {
    if (required) throw new EnvelopeError(`event.${name} is required`);
    return "";
  }
  if (typeof value !== "string") throw new EnvelopeError(`event.${name} must be a string`);
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
