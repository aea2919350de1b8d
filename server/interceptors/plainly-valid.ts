// Requests that plainly pass their protovalidate rules, recognised without
// running protovalidate. AppendEventsRequest is the hot path's request, and
// protovalidate's general evaluation of it (a CEL rule, patterns, map rules)
// costs about as much as the rest of the call's validation together. Only a
// "yes" is trusted: anything these checks do not plainly accept goes through
// protovalidate, so a refused request gets exactly protovalidate's answer.
// The checks are the rules of proto/ written out, stricter where that is
// simpler (string lengths in UTF-16 units, which are never fewer than the code
// points protovalidate counts); test/unit/plainly-valid.test.ts holds them
// against protovalidate and against the rules the descriptors declare.
import type { DescMessage } from "@bufbuild/protobuf";
import { type AppendEventsRequest, AppendEventsRequestSchema } from "../../gen/eventide/v1/event_service_pb.js";
import type { EventInput } from "../../gen/eventide/v1/resources_pb.js";

const ulid = /^[0-9A-HJKMNP-TV-Z]{26}$/u;
const eventId = /^[A-Za-z0-9_-]{1,64}$/u;
const eventType = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/u;
const levels = new Set(["debug", "info", "warn", "error"]);
const maxSeq = BigInt(Number.MAX_SAFE_INTEGER);

function plainlyValidEvent(e: EventInput): boolean {
  if (e.eventId !== "" && !eventId.test(e.eventId)) return false;
  if (e.type.length > 128 || !eventType.test(e.type)) return false;
  if (e.schemaVersion < 0 || e.schemaVersion > 1_000_000) return false;
  if (e.level !== "" && !levels.has(e.level)) return false;
  let pairs = 0;
  for (const key of Object.keys(e.metadata)) {
    if (++pairs > 64 || key.length === 0 || key.length > 128 || e.metadata[key].length > 1024) return false;
  }
  return true;
}

function plainlyValidAppend(m: AppendEventsRequest): boolean {
  if (!ulid.test(m.threadId)) return false;
  if (m.turnId !== "" && !ulid.test(m.turnId)) return false;
  if (m.leaseId.length > 64 || (m.leaseId !== "" && m.turnId === "")) return false;
  if (m.expectedLastSeq !== undefined && (m.expectedLastSeq < 0n || m.expectedLastSeq > maxSeq)) return false;
  if (m.events.length < 1 || m.events.length > 1000) return false;
  for (const e of m.events) if (!plainlyValidEvent(e)) return false;
  return true;
}

/** Per request schema, a check whose `true` means protovalidate would find no violation. */
export const plainlyValid = new Map<DescMessage, (message: unknown) => boolean>([
  [AppendEventsRequestSchema, (m) => plainlyValidAppend(m as AppendEventsRequest)],
]);
