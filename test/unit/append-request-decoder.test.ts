// The direct AppendEventsRequest reader must give exactly protobuf-es's message, or give up:
// on requests as encoders write them, on odd but valid encodings, and on random corruptions of
// both (where protobuf-es may also refuse the bytes: then the reader must have given up).
import test from "ava";
import { isDeepStrictEqual } from "node:util";
import { create, fromBinary, type JsonObject, type JsonValue, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { AppendEventsRequestSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { decodeAppendEventsRequest } from "../../server/wire/append-request-decoder.js";
import { Random } from "../support/fuzz-inputs.js";

/** What protobuf-es makes of the bytes, or the error it throws. */
function reference(bytes: Uint8Array): { message?: unknown; error?: unknown } {
  try {
    return { message: fromBinary(AppendEventsRequestSchema, bytes) };
  } catch (error) {
    return { error };
  }
}

const strings = ["", "x", "hello world", "é", "日本語", "🚀 emoji", "\u0000", "quote \" and \\ backslash", "x".repeat(1000), "a\ufffdb", "inner \ufeff bom", "1", "constructor"];

function randomValue(next: () => number, depth: number): JsonValue {
  const pick = Math.floor(next() * (depth > 4 ? 4 : 6));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return [0, -0, 1, -1.5, 1e300, Number.MAX_SAFE_INTEGER, NaN, Infinity, -Infinity, next()][Math.floor(next() * 10)];
    case 2:
      return strings[Math.floor(next() * strings.length)];
    case 3:
      return next() < 0.5;
    case 4:
      return randomObject(next, depth + 1);
    default:
      return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
  }
}

function randomObject(next: () => number, depth: number): JsonObject {
  const object: JsonObject = {};
  const keys = ["delta", "a", "b", "", "10", "2", "ключ", "constructor", "toString"];
  for (let i = Math.floor(next() * 4); i > 0; i--) object[keys[Math.floor(next() * keys.length)]] = randomValue(next, depth);
  return object;
}

function randomRequest(next: () => number): Uint8Array {
  const events = Array.from({ length: 1 + Math.floor(next() * 4) }, () => ({
    eventId: next() < 0.5 ? "" : `ev-${Math.floor(next() * 1e6)}`,
    type: next() < 0.9 ? "message.delta" : "",
    payload: next() < 0.9 ? randomObject(next, 1) : undefined,
    metadata: (next() < 0.5 ? {} : { trace: strings[Math.floor(next() * strings.length)], "": "empty key", n: "1" }) as Record<string, string>,
    schemaVersion: next() < 0.7 ? 0 : Math.floor(next() * 2 ** 31),
    level: ["", "info", "warn"][Math.floor(next() * 3)],
  }));
  return toBinary(
    AppendEventsRequestSchema,
    create(AppendEventsRequestSchema, {
      threadId: next() < 0.9 ? "01JABCDEFGHJKMNPQRSTVWXYZ0" : "",
      turnId: next() < 0.5 ? "" : "01JABCDEFGHJKMNPQRSTVWXYZ1",
      leaseId: next() < 0.5 ? "" : "lease-1",
      expectedLastSeq: next() < 0.5 ? undefined : BigInt(Math.floor(next() ** 4 * Number.MAX_SAFE_INTEGER)),
      events,
    }),
  );
}

test("requests as protobuf-es writes them are read, equal to its own decoding", (t) => {
  const random = new Random(0x51ed);
  const next = () => random.next();
  for (let i = 0; i < 2_000; i++) {
    const bytes = randomRequest(next);
    const direct = decodeAppendEventsRequest(Buffer.from(bytes));
    const expected = reference(bytes);
    if (!direct) {
      t.fail(`request ${i} was given up: ${Buffer.from(bytes).toString("hex").slice(0, 200)}`);
      return;
    }
    if (!isDeepStrictEqual(direct, expected.message)) {
      t.deepEqual(direct, expected.message as never, `request ${i}`);
      return;
    }
  }
  t.pass();
});

test("the bench's batch of 1 KiB events is read directly", (t) => {
  const bytes = toBinary(
    AppendEventsRequestSchema,
    create(AppendEventsRequestSchema, { threadId: "01JABCDEFGHJKMNPQRSTVWXYZ0", events: Array.from({ length: 100 }, () => ({ type: "bench.tick", payload: { delta: "x".repeat(1000) } })) }),
  );
  const direct = decodeAppendEventsRequest(Buffer.from(bytes));
  t.truthy(direct);
  t.true(isDeepStrictEqual(direct, fromBinary(AppendEventsRequestSchema, bytes)));
});

test("corrupted requests are read as protobuf-es reads them, or given up; never accepted where it throws", (t) => {
  const random = new Random(0xc0ffee);
  const next = () => random.next();
  let accepted = 0;
  let givenUp = 0;
  for (let i = 0; i < 20_000; i++) {
    const bytes = Buffer.from(randomRequest(next));
    const mutated = mutate(bytes, next);
    const direct = decodeAppendEventsRequest(mutated);
    if (direct === undefined) {
      givenUp++;
      continue;
    }
    accepted++;
    const expected = reference(mutated);
    if (expected.error !== undefined) {
      t.fail(`protobuf-es refuses ${mutated.toString("hex")} (${String(expected.error)}) but it was read`);
      return;
    }
    if (!isDeepStrictEqual(direct, expected.message)) {
      t.deepEqual(direct, expected.message as never, mutated.toString("hex"));
      return;
    }
  }
  // Both outcomes must occur, or the corruptions test nothing.
  t.true(accepted > 1_000, `accepted ${accepted}`);
  t.true(givenUp > 1_000, `given up ${givenUp}`);
});

function mutate(bytes: Buffer, next: () => number): Buffer {
  const at = Math.floor(next() * bytes.length);
  switch (Math.floor(next() * 5)) {
    case 0: {
      const out = Buffer.from(bytes);
      out[at] = Math.floor(next() * 256);
      return out;
    }
    case 1:
      return bytes.subarray(0, at);
    case 2:
      return Buffer.concat([bytes.subarray(0, at), Buffer.from([Math.floor(next() * 256)]), bytes.subarray(at)]);
    case 3:
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
    default: {
      const out = Buffer.from(bytes);
      out[at] ^= 1 << Math.floor(next() * 8);
      return out;
    }
  }
}

/** A request written field by field, for encodings protobuf-es itself never writes. */
function written(build: (w: BinaryWriter) => void): Buffer {
  const w = new BinaryWriter();
  build(w);
  return Buffer.from(w.finish());
}

const threadId = "01JABCDEFGHJKMNPQRSTVWXYZ0";
const eventWith = (build: (w: BinaryWriter) => void) => written((w) => w.tag(1, 2).string(threadId).tag(5, 2).bytes(written(build)));
const payloadWith = (build: (w: BinaryWriter) => void) => eventWith((w) => w.tag(2, 2).string("a.b").tag(3, 2).bytes(written(build)));
const structEntry = (key: Uint8Array, value: Uint8Array) => written((w) => w.tag(1, 2).bytes(written((e) => e.tag(1, 2).bytes(key).tag(2, 2).bytes(value))));

const givenUpCases: [string, Buffer][] = [
  ["a field repeated", written((w) => w.tag(1, 2).string(threadId).tag(1, 2).string(threadId))],
  ["an unknown field", written((w) => w.tag(1, 2).string(threadId).tag(9, 0).uint32(1))],
  ["a field of the wrong wire type", written((w) => w.tag(1, 0).uint32(7))],
  ["invalid UTF-8", written((w) => w.tag(1, 2).bytes(Buffer.from([0x61, 0xff, 0x62])))],
  ["a leading byte-order mark", written((w) => w.tag(1, 2).bytes(Buffer.from("\ufeff01J", "utf8")))],
  ["a negative expected_last_seq", written((w) => w.tag(4, 0).int64(-1n))],
  ["an event field repeated", eventWith((w) => w.tag(2, 2).string("a.b").tag(2, 2).string("a.c"))],
  ["a metadata entry without its key", eventWith((w) => w.tag(4, 2).bytes(written((e) => e.tag(2, 2).string("v"))))],
  ["a metadata key __proto__", eventWith((w) => w.tag(4, 2).bytes(written((e) => e.tag(1, 2).string("__proto__").tag(2, 2).string("v"))))],
  ["a payload key __proto__", payloadWith((w) => w.raw(structEntry(Buffer.from("__proto__"), written((v) => v.tag(3, 2).string("x")))))],
  ["a Value without a kind", payloadWith((w) => w.raw(structEntry(Buffer.from("k"), Buffer.alloc(0))))],
  ["a Value with two kinds", payloadWith((w) => w.raw(structEntry(Buffer.from("k"), written((v) => v.tag(3, 2).string("x").tag(4, 0).bool(true)))))],
  ["a bool of 2", payloadWith((w) => w.raw(structEntry(Buffer.from("k"), written((v) => v.tag(4, 0).uint32(2)))))],
  ["a negative schema_version", eventWith((w) => w.tag(5, 0).int32(-1))],
];

for (const [name, bytes] of givenUpCases) {
  test(`given up: ${name}`, (t) => {
    t.is(decodeAppendEventsRequest(bytes), undefined);
  });
}

test("given up: payloads nested deeper than the reader follows (protobuf-es still decodes them)", (t) => {
  let value: JsonValue = "leaf";
  for (let i = 0; i < 45; i++) value = { k: value };
  const bytes = toBinary(AppendEventsRequestSchema, create(AppendEventsRequestSchema, { threadId, events: [{ type: "a.b", payload: value as JsonObject }] }));
  t.is(decodeAppendEventsRequest(Buffer.from(bytes)), undefined);
  t.truthy(reference(bytes).message);
});

test("protobuf-es refuses what was given up for invalid UTF-8, and keeps what was given up for a repeat", (t) => {
  t.truthy(reference(givenUpCases[3][1]).error);
  t.is((reference(givenUpCases[0][1]).message as { threadId: string }).threadId, threadId);
});

test("a reader running on a Buffer view of a larger body reads only its own bytes", (t) => {
  const bytes = toBinary(AppendEventsRequestSchema, create(AppendEventsRequestSchema, { threadId, events: [{ type: "a.b", payload: { n: 1 } }] }));
  const body = Buffer.concat([Buffer.from([0, 0, 0, 0, bytes.length]), bytes, Buffer.from([0x0a, 0x01, 0x41])]);
  const direct = decodeAppendEventsRequest(body.subarray(5, 5 + bytes.length));
  t.true(isDeepStrictEqual(direct, fromBinary(AppendEventsRequestSchema, bytes)));
});
