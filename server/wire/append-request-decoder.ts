// AppendEventsRequest read straight from its bytes into the message protobuf-es
// would make. protobuf-es decodes each payload into Struct and Value messages,
// then converts them into the JSON object the generated type holds: about half
// of a batch's allocation on the hot path. This reader builds the JSON object
// directly, for the request as encoders write it: each field once, with its
// declared wire type, map entries as key then value, no unknown fields. Anything
// else (and anything protobuf-es would treat in a way of its own: invalid UTF-8,
// a leading byte-order mark, a "__proto__" key, a Value without a kind, deep
// nesting) makes it give up, and the caller decodes with protobuf-es as before,
// so an odd request gets exactly today's message or error. The unit tests hold
// its result equal to protobuf-es's on generated, random and mutated requests.
import type { JsonObject, JsonValue, MessageShape } from "@bufbuild/protobuf";
import { isUtf8 } from "node:buffer";
import type { AppendEventsRequestSchema } from "../../gen/eventide/v1/event_service_pb.js";
import type { EventInput } from "../../gen/eventide/v1/resources_pb.js";

type AppendEventsRequest = MessageShape<typeof AppendEventsRequestSchema>;

/** Thrown to give up (one object, made once: giving up is not an error). */
const giveUp = { giveUp: true };

/**
 * Objects and lists nested in a payload that this reader follows. protobuf-es stops at 100
 * messages (each level is two); eventide refuses more than 32 levels after decoding anyway.
 */
const maxDepth = 40;

// The bytes being read: decoding is synchronous, so one reader at a time. Between reads it holds
// an empty buffer, so a request's body is not kept alive by this module.
const none = Buffer.alloc(0);
let bytes: Buffer = none;
let pos = 0;

/** The request, or undefined when protobuf-es should decode it. */
export function decodeAppendEventsRequest(message: Buffer): AppendEventsRequest | undefined {
  bytes = message;
  pos = 0;
  try {
    return request(message.length);
  } catch (err) {
    if (err === giveUp) return undefined;
    throw err;
  } finally {
    bytes = none;
  }
}

function request(end: number): AppendEventsRequest {
  let threadId = "";
  let turnId = "";
  let leaseId = "";
  let expectedLastSeq: bigint | undefined;
  const events: EventInput[] = [];
  let seen = 0;
  while (pos < end) {
    const tag = bytes[pos++];
    switch (tag) {
      case 0x0a: // 1 thread_id, string
        seen = once(seen, 1);
        threadId = string(end);
        break;
      case 0x12: // 2 turn_id, string
        seen = once(seen, 2);
        turnId = string(end);
        break;
      case 0x1a: // 3 lease_id, string
        seen = once(seen, 4);
        leaseId = string(end);
        break;
      case 0x20: // 4 expected_last_seq, int64
        seen = once(seen, 8);
        expectedLastSeq = BigInt(uint53(end));
        break;
      case 0x2a: // 5 events, repeated EventInput
        events.push(eventInput(endOf(end)));
        break;
      default:
        throw giveUp;
    }
  }
  // Built with the keys protobuf-es gives the message, in its order (a message field is added when set).
  const message: AppendEventsRequest = { $typeName: "eventide.v1.AppendEventsRequest", threadId, turnId, leaseId, events };
  if (expectedLastSeq !== undefined) message.expectedLastSeq = expectedLastSeq;
  return message;
}

function eventInput(end: number): EventInput {
  let eventId = "";
  let type = "";
  let payload: JsonObject | undefined;
  const metadata: Record<string, string> = {};
  let schemaVersion = 0;
  let level = "";
  let seen = 0;
  while (pos < end) {
    const tag = bytes[pos++];
    switch (tag) {
      case 0x0a: // 1 event_id, string
        seen = once(seen, 1);
        eventId = string(end);
        break;
      case 0x12: // 2 type, string
        seen = once(seen, 2);
        type = string(end);
        break;
      case 0x1a: // 3 payload, google.protobuf.Struct
        seen = once(seen, 4);
        payload = struct(endOf(end), 1);
        break;
      case 0x22: {
        // 4 metadata, map<string, string>: an entry is key (1) then value (2)
        const entryEnd = endOf(end);
        expect(0x0a, entryEnd);
        const key = mapKey(entryEnd);
        expect(0x12, entryEnd);
        metadata[key] = string(entryEnd);
        if (pos !== entryEnd) throw giveUp;
        break;
      }
      case 0x28: // 5 schema_version, int32
        seen = once(seen, 8);
        schemaVersion = uint53(end);
        if (schemaVersion > 0x7fffffff) throw giveUp;
        break;
      case 0x32: // 6 level, string
        seen = once(seen, 16);
        level = string(end);
        break;
      default:
        throw giveUp;
    }
  }
  if (pos !== end) throw giveUp;
  const input: EventInput = { $typeName: "eventide.v1.EventInput", eventId, type, metadata, schemaVersion, level };
  if (payload !== undefined) input.payload = payload;
  return input;
}

/** A google.protobuf.Struct ending at `end`, as a JSON object. */
function struct(end: number, depth: number): JsonObject {
  if (depth > maxDepth) throw giveUp;
  const object: JsonObject = {};
  while (pos < end) {
    // 1 fields, map<string, Value>
    expect(0x0a, end);
    const entryEnd = endOf(end);
    expect(0x0a, entryEnd);
    const key = mapKey(entryEnd);
    expect(0x12, entryEnd);
    const valueEnd = endOf(entryEnd);
    object[key] = value(valueEnd, depth);
    if (pos !== entryEnd) throw giveUp;
  }
  if (pos !== end) throw giveUp;
  return object;
}

/** A google.protobuf.Value ending at `end`: exactly one of its kinds. */
function value(end: number, depth: number): JsonValue {
  if (pos >= end) throw giveUp;
  let result: JsonValue;
  switch (bytes[pos++]) {
    case 0x08: // 1 null_value, enum
      uint53(end);
      result = null;
      break;
    case 0x11: // 2 number_value, double
      if (end - pos < 8) throw giveUp;
      result = bytes.readDoubleLE(pos);
      pos += 8;
      break;
    case 0x1a: // 3 string_value
      result = string(end);
      break;
    case 0x20: {
      // 4 bool_value
      const b = pos < end ? bytes[pos++] : 2;
      if (b > 1) throw giveUp;
      result = b === 1;
      break;
    }
    case 0x2a: // 5 struct_value
      result = struct(endOf(end), depth + 1);
      break;
    case 0x32: // 6 list_value
      result = list(endOf(end), depth + 1);
      break;
    default:
      throw giveUp;
  }
  if (pos !== end) throw giveUp;
  return result;
}

/** A google.protobuf.ListValue ending at `end`. */
function list(end: number, depth: number): JsonValue[] {
  if (depth > maxDepth) throw giveUp;
  const values: JsonValue[] = [];
  while (pos < end) {
    expect(0x0a, end); // 1 values, repeated Value
    values.push(value(endOf(end), depth));
  }
  return values;
}

/** Each of a message's singular fields is read once: a repeat (merged or replaced by protobuf-es) gives up. */
function once(seen: number, bit: number): number {
  if (seen & bit) throw giveUp;
  return seen | bit;
}

function expect(tag: number, end: number): void {
  if (pos >= end || bytes[pos] !== tag) throw giveUp;
  pos++;
}

/** A varint below 2^53 (eight bytes at most), ending before `end`. */
function uint53(end: number): number {
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (pos >= end) throw giveUp;
    const b = bytes[pos++];
    result += (b & 0x7f) * scale;
    if (b < 0x80) {
      if (result > Number.MAX_SAFE_INTEGER) throw giveUp;
      return result;
    }
    scale *= 128;
  }
  throw giveUp;
}

/** A length-delimited field's length, which must fit before `end`. */
function lengthOf(end: number): number {
  const length = uint53(end);
  if (length > end - pos) throw giveUp;
  return length;
}

/** Where a length-delimited field that starts here ends (its length read first). */
function endOf(end: number): number {
  const length = lengthOf(end);
  return pos + length;
}

function mapKey(end: number): string {
  const key = string(end);
  // Assigning it would set the object's prototype: protobuf-es's path refuses it by name.
  if (key === "__proto__") throw giveUp;
  return key;
}

/** A string field: valid UTF-8 only (protobuf-es refuses the rest), without a leading byte-order mark (its decoder drops one). */
function string(end: number): string {
  const length = lengthOf(end);
  const start = pos;
  pos += length;
  if (length === 0) return "";
  if (length >= 3 && bytes[start] === 0xef && bytes[start + 1] === 0xbb && bytes[start + 2] === 0xbf) throw giveUp;
  const text = bytes.toString("utf8", start, pos);
  // Node's decoder writes U+FFFD for every invalid sequence: text without one came from valid UTF-8.
  if (text.includes("\ufffd") && !isUtf8(bytes.subarray(start, pos))) throw giveUp;
  return text;
}
