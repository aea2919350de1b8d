// Input rules checked in code: every failure names the field and the rule, and
// is thrown before anything is written. Most of them are also declared in the
// proto (protovalidate, enforced first by server/interceptors/validate.ts) and
// stay here as a second line with the same limits; the JSON byte size, reserved
// types, duplicate event ids of a batch and storable text exist only here.
import type { JsonObject } from "@bufbuild/protobuf";
import { InvalidInput } from "../domain/errors.js";
import { type EventLevel, eventLevels } from "../domain/records.js";

export const limits = {
  eventsPerBatch: 1_000,
  eventsPerTailResponse: 1_000,
  payloadBytes: 256 * 1024,
  /**
   * Objects and arrays nested in a payload, input or output (the value itself is the first).
   * Protobuf decoders stop at a depth of 100 messages and each JSON level is two (Struct and
   * Value): deeper values would be refused over binary but not over JSON, and once stored could
   * not be decoded in a batched tail or an agent's assignment (48 levels at most there).
   */
  jsonDepth: 32,
  metadataEntries: 64,
  metadataKeyChars: 128,
  metadataValueChars: 1_024,
  typeChars: 128,
  typeFilters: 32,
  idempotencyKeyChars: 256,
  reasonChars: 1_024,
  errorChars: 4_096,
  agentIdChars: 128,
  leaseIdChars: 64,
  maxInFlight: 1_000,
} as const;

const ulidPattern = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const eventIdPattern = /^[A-Za-z0-9_-]{1,64}$/;
const typePattern = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;
const typePrefixPattern = /^[a-z0-9_.]{1,128}$/;

/** Types only eventide appends: they drive the thread and turn projections. */
const reservedTypes = /^(thread\.created|turn\.[a-z_]+)$/;

export function requireUlid(field: string, value: string): string {
  if (!ulidPattern.test(value)) throw new InvalidInput(`${field} must be a ULID (26 characters of Crockford base32), got ${quote(value)}`);
  return value;
}

export function optionalUlid(field: string, value: string): string {
  return value === "" ? "" : requireUlid(field, value);
}

export function eventId(field: string, value: string): string {
  if (!eventIdPattern.test(value)) throw new InvalidInput(`${field} must be 1-64 characters of [A-Za-z0-9_-], got ${quote(value)}`);
  return value;
}

export function eventType(field: string, value: string): string {
  if (value.length > limits.typeChars || !typePattern.test(value)) {
    throw new InvalidInput(`${field} must be lowercase dot notation like "message.delta" (${typePattern.source}, at most ${limits.typeChars} characters), got ${quote(value)}`);
  }
  if (reservedTypes.test(value)) {
    throw new InvalidInput(`${field} ${quote(value)} is appended by eventide itself; use the TurnService/AgentService RPCs`);
  }
  return value;
}

export function typePrefixes(field: string, values: string[]): string[] {
  if (values.length > limits.typeFilters) throw new InvalidInput(`${field} takes at most ${limits.typeFilters} prefixes, got ${values.length}`);
  values.forEach((v, i) => {
    if (!typePrefixPattern.test(v)) throw new InvalidInput(`${field}[${i}] must be 1-128 characters of [a-z0-9_.], got ${quote(v)}`);
  });
  return values;
}

export function jsonObject(field: string, value: JsonObject | undefined): JsonObject {
  return jsonObjectWithText(field, value).object;
}

/** The object and its JSON text (measured for the limit, and reused by the hot tier). */
export function jsonObjectWithText(field: string, value: JsonObject | undefined): { object: JsonObject; json: string } {
  const object = value ?? {};
  const json = JSON.stringify(object);
  const bytes = Buffer.byteLength(json);
  if (bytes > limits.payloadBytes) throw new InvalidInput(`${field} is ${bytes} bytes as JSON; the limit is ${limits.payloadBytes}`);
  if (nestsDeeper(object, limits.jsonDepth)) throw new InvalidInput(`${field} nests objects and arrays more than ${limits.jsonDepth} levels deep`);
  // JSON.stringify escapes exactly these (an escape is one behind an odd run of backslashes).
  // Most payloads have no \u escape at all: the pattern (a look-behind over the whole text) is not run for them.
  const escaped = json.includes("\\u") ? /(?<!\\)(?:\\\\)*\\u(0000|d[89a-f][0-9a-f]{2})/i.exec(json) : null;
  if (escaped) throw new InvalidInput(`${field} holds ${escaped[1] === "0000" ? "U+0000" : "an unpaired surrogate"}${unstorableWhy}`);
  return { object, json };
}

/** Whether `value` holds objects and arrays nested more than `levels` deep (early out, no recursion past the limit). */
function nestsDeeper(value: unknown, levels: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (levels === 0) return true;
  for (const item of Array.isArray(value) ? value : Object.values(value)) if (nestsDeeper(item, levels - 1)) return true;
  return false;
}

/**
 * Postgres stores neither U+0000 nor an unpaired surrogate (text and jsonb refuse them):
 * accepted, such a string would stop the persister at its event for good.
 */
const unstorable = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unstorableWhy = ", which cannot be stored";

export function storable(field: string, value: string): string {
  const found = unstorable.exec(value);
  if (found) throw new InvalidInput(`${field} holds ${found[0] === "\u0000" ? "U+0000" : "an unpaired surrogate"}${unstorableWhy}`);
  return value;
}

export function metadata(field: string, value: Record<string, string>): Record<string, string> {
  const entries = Object.entries(value);
  if (entries.length > limits.metadataEntries) throw new InvalidInput(`${field} has ${entries.length} entries; the limit is ${limits.metadataEntries}`);
  for (const [k, v] of entries) {
    if (k.length === 0 || chars(k, limits.metadataKeyChars) > limits.metadataKeyChars) throw new InvalidInput(`${field} keys must be 1-${limits.metadataKeyChars} characters, got ${quote(k)}`);
    if (chars(v, limits.metadataValueChars) > limits.metadataValueChars) throw new InvalidInput(`${field}[${quote(k)}] is longer than ${limits.metadataValueChars} characters`);
    storable(`${field} key ${quote(k)}`, k);
    storable(`${field}[${quote(k)}]`, v);
  }
  return { ...value };
}

export function level(field: string, value: string): EventLevel {
  if (value === "") return "info";
  if (!(eventLevels as readonly string[]).includes(value)) throw new InvalidInput(`${field} must be one of ${eventLevels.join(", ")}, got ${quote(value)}`);
  return value as EventLevel;
}

export function schemaVersion(field: string, value: number): number {
  if (value === 0) return 1;
  if (value < 0 || value > 1_000_000) throw new InvalidInput(`${field} must be from 1 to 1000000, got ${value}`);
  return value;
}

/** Seqs are int64 on the wire and numbers inside (a log never nears 2^53 events). */
export function seq(field: string, value: bigint): number {
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidInput(`${field} must be a seq from 0 to 2^53-1, got ${value}`);
  return Number(value);
}

/** TailEvents' max_events_per_response: 0 (one event a response, in `event`) to the limit. */
export function eventsPerResponse(field: string, value: number): number {
  if (value > limits.eventsPerTailResponse) throw new InvalidInput(`${field} must be from 0 to ${limits.eventsPerTailResponse}, got ${value}`);
  return value;
}

export const maxPageSize = 1_000;

export function pageSize(field: string, value: number, fallback: number): number {
  if (value === 0) return fallback;
  if (value < 0 || value > maxPageSize) throw new InvalidInput(`${field} must be from 1 to ${maxPageSize}, got ${value}`);
  return value;
}

/** Text of at most `max` characters, storable. */
export function maxChars(field: string, value: string, max: number): string {
  if (chars(value, max) > max) throw new InvalidInput(`${field} is longer than ${max} characters`);
  return storable(field, value);
}

const agentIdPattern = /^[\x21-\x7e]+$/;

export function agentId(field: string, value: string): string {
  if (value.length === 0 || value.length > limits.agentIdChars || !agentIdPattern.test(value)) {
    throw new InvalidInput(`${field} must be 1-${limits.agentIdChars} printable ASCII characters without spaces, got ${quote(value)}`);
  }
  return value;
}

export function leaseId(field: string, value: string): string {
  if (value.length === 0 || value.length > limits.leaseIdChars) throw new InvalidInput(`${field} must be the lease_id of a TurnAssignment, got ${quote(value)}`);
  return value;
}

export function maxInFlight(field: string, value: number): number {
  if (value === 0) return 1;
  if (value < 0 || value > limits.maxInFlight) throw new InvalidInput(`${field} must be from 1 to ${limits.maxInFlight} (0 means 1), got ${value}`);
  return value;
}

/** Characters as protovalidate counts them: code points, not UTF-16 units (counted only past `max` units). */
function chars(value: string, max: number): number {
  if (value.length <= max) return value.length;
  let n = 0;
  for (const _ of value) n++;
  return n;
}

function quote(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}
