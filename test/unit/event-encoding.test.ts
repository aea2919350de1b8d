// The hand-written Event encoder that TailEvents uses for binary clients must
// write exactly what protobuf-es writes for the same event: compared byte for
// byte over fixed edge cases and seeded random events.
import test from "ava";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { create, type JsonObject, type JsonValue, toBinary } from "@bufbuild/protobuf";
import { EventBatchSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { EventSchema } from "../../gen/eventide/v1/resources_pb.js";
import type { StoredEvent } from "../../server/domain/records.js";
import {
  encodedEventsDelimited,
  encodeEvent,
  encodeEventBatchesDelimited,
  encodeEventDelimited,
  encodeEventsDelimited,
  encodeEventsDelimitedKept,
  toEvent,
} from "../../server/services/convert.js";

const base: StoredEvent = {
  eventId: "01JZ0000000000000000000000",
  threadId: "01JZ0000000000000000000001",
  turnId: "",
  seq: 1,
  type: "message.delta",
  payload: {},
  metadata: {},
  schemaVersion: 1,
  createdAt: 1_767_225_600_123,
  tenantId: "default",
  level: "info",
};

const edgeCases: Partial<StoredEvent>[] = [
  {},
  { turnId: "01JZ0000000000000000000002", seq: 2 ** 32 + 5, schemaVersion: 1_000_000, level: "error" },
  { seq: Number.MAX_SAFE_INTEGER, createdAt: 0 },
  { createdAt: -62_135_596_800_000 },
  { payload: { nested: { deep: [1, -2.5, 1e300, null, true, false, "x", { y: [] }] }, empty: {}, list: [] } },
  { payload: { text: "héllo ✓ 👋 \u{10FFFF}", lone: "\uD800", big: "x".repeat(70_000) } },
  { metadata: { correlation_id: "c-1", "ключ": "значение", empty: "" } },
  { tenantId: "", eventId: "e", type: "x" },
];

function delimited(bytes: Uint8Array): Uint8Array {
  return new BinaryWriter().bytes(bytes).finish();
}

function check(t: import("ava").ExecutionContext, e: StoredEvent, label: string) {
  const expected = toBinary(EventSchema, toEvent(e));
  t.deepEqual(Buffer.from(encodeEvent(e)), Buffer.from(expected), label);
  t.deepEqual(Buffer.from(encodeEventDelimited(e)), Buffer.from(delimited(expected)), `${label} (delimited)`);
}

test("encodeEvent writes toBinary(EventSchema, toEvent(e)) for edge cases", (t) => {
  edgeCases.forEach((overrides, i) => check(t, { ...base, ...overrides }, `edge case ${i}`));
});

test("encodeEvent agrees with toBinary on seeded random events, one at a time and a page at a time", (t) => {
  let seed = 20261125;
  const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
  const text = () => Array.from({ length: Math.floor(random() * 12) }, () => pick(["a", "Z", "é", "✓", "👋", " ", '"', "\\", "\n"])).join("");
  const value = (depth: number): JsonValue => {
    const kind = depth > 3 ? pick(["n", "s", "b", "z"]) : pick(["n", "s", "b", "z", "o", "a"]);
    if (kind === "n") return pick([0, -1, 1.5, 2 ** 53, -(2 ** 31), random() * 1e6]);
    if (kind === "s") return text();
    if (kind === "b") return random() < 0.5;
    if (kind === "z") return null;
    if (kind === "a") return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
    return object(depth + 1);
  };
  const object = (depth: number): JsonObject => Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, () => [text(), value(depth)]));
  const events: StoredEvent[] = Array.from({ length: 300 }, (_, i) => ({
    ...base,
    seq: i + 1 + Math.floor(random() * 2 ** 40),
    turnId: random() < 0.5 ? "" : "01JZ0000000000000000000003",
    payload: object(0),
    metadata: Object.fromEntries(Array.from({ length: Math.floor(random() * 3) }, () => [text() || "k", text()])),
    level: pick(["debug", "info", "warn", "error"] as const),
    createdAt: Math.floor(random() * 4e12),
  }));
  events.forEach((e, i) => check(t, e, `random event ${i}`));
  const page = encodeEventsDelimited(events);
  t.is(page.length, events.length);
  page.forEach((bytes, i) => t.deepEqual(Buffer.from(bytes), Buffer.from(delimited(toBinary(EventSchema, toEvent(events[i])))), `page event ${i}`));
  // As EventBatch messages: the counts and byte bound split them, and each batch is what toBinary writes.
  const batches = encodeEventBatchesDelimited(events, 64, 16 * 1024);
  t.is(batches.reduce((n, b) => n + b.count, 0), events.length);
  t.true(batches.some((b) => b.count === 64) && batches.some((b) => b.count < 64), "both bounds split them");
  let at = 0;
  for (const [i, { data, count }] of batches.entries()) {
    const expected = toBinary(EventBatchSchema, create(EventBatchSchema, { events: events.slice(at, (at += count)).map(toEvent) }));
    t.true(expected.length <= 16 * 1024 || count === 1, `batch ${i} bytes`);
    t.deepEqual(Buffer.from(data), Buffer.from(delimited(expected)), `batch ${i}`);
  }
});

test("a batch holds one event over the byte bound alone, and never splits an event", (t) => {
  const big = { ...base, payload: { big: "x".repeat(40_000) } };
  const batches = encodeEventBatchesDelimited([base, big, base, base], 10, 16 * 1024);
  t.deepEqual(batches.map((b) => b.count), [1, 1, 2]);
  t.deepEqual(Buffer.from(batches[1].data), Buffer.from(delimited(toBinary(EventBatchSchema, create(EventBatchSchema, { events: [toEvent(big)] })))));
});

// An append's events are encoded once for its live frames; its answer echoes those bytes.
test("encodedEventsDelimited gives the bytes kept for the same array, and encodes any other", (t) => {
  const events = edgeCases.map((e, i) => ({ ...base, ...e, seq: i + 1 }));
  const kept = encodeEventsDelimitedKept(events);
  t.is(encodedEventsDelimited(events), kept, "the kept encoding is reused");
  t.deepEqual(kept, events.map((e) => delimited(encodeEvent(e))));
  const copy = [...events];
  const fresh = encodedEventsDelimited(copy);
  t.not(fresh, kept, "another array is encoded");
  t.deepEqual(fresh, kept);
});
