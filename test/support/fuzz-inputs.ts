// Random inputs for fuzz tests, reproducible from a seed: messages built from a
// descriptor (hostile strings, extreme numbers, undefined enum values, odd
// timestamps, random JSON payloads, oversized lists and maps) and malformed
// protobuf and JSON bodies.
import { create, type DescField, type DescMessage, type JsonObject, type JsonValue, type Message, ScalarType, toBinary } from "@bufbuild/protobuf";

/** A seeded PRNG (mulberry32) with the picks the generators need. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
}

const ulidAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const hostile = ["'; DROP TABLE threads; --", "../../etc/passwd", "{0}", "*", "\u0000", "%s%n", "${x}", "\r\n", "null", "__proto__", "constructor", " "];
const typeLike = ["message.delta", "custom", "a.b_c.d", "turn.completed", "thread.created", "Message", "message.", ".x", "a..b", "m"];
/** Code point ranges: controls, Latin, combining marks, Hebrew, CJK, BOM/specials, emoji. */
const codePoints: [number, number][] = [[0, 0x1f], [0x20, 0x7e], [0xc0, 0x17f], [0x300, 0x36f], [0x5d0, 0x5ea], [0x4e00, 0x4fff], [0xfeff, 0xffff], [0x1f600, 0x1f64f]];

/**
 * `huge`: strings may be up to 100,000 characters. Off inside the over-the-limit lists
 * and maps (1,001 copies of a huge string would be a 400 MB request).
 */
export function randomString(r: Random, fieldName = "", huge = true): string {
  if (fieldName.endsWith("_id") && r.chance(0.4)) return ulidLike(r);
  if (fieldName === "page_token" && r.chance(0.5)) return Buffer.from(JSON.stringify(randomJsonArray(r))).toString("base64url");
  switch (r.int(8)) {
    case 0:
      return "";
    case 1:
      return Array.from({ length: 1 + r.int(40) }, () => String.fromCharCode(0x21 + r.int(94))).join("");
    case 2:
      return Array.from({ length: 1 + r.int(40) }, () => {
        if (r.chance(0.03)) return "\ud800"; // a lone surrogate: not UTF-8 encodable
        const [lo, hi] = r.pick(codePoints);
        return String.fromCodePoint(lo + r.int(hi - lo + 1));
      }).join("");
    case 3:
      return r.pick(["x", "é", "😀", "a."]).repeat(r.pick(huge ? [65, 129, 257, 1025, 4097, 70_000, 100_000] : [65, 129, 257, 1025]));
    case 4:
      return ulidLike(r);
    case 5:
      return r.pick(typeLike);
    case 6:
      return r.pick(hostile);
    default:
      return r.pick(["debug", "info", "warn", "error", "0", "-1", "default"]);
  }
}

function ulidLike(r: Random): string {
  const ulid = Array.from({ length: 26 }, () => r.pick([...ulidAlphabet])).join("");
  return r.pick([ulid, ulid, ulid.toLowerCase(), ulid.slice(1), `${ulid}0`, ulid.replace(/.$/, "U")]);
}

const int32s = [0, 1, -1, 2, 50, 100, 1000, 1001, 1_000_000, 1_000_001, 2147483647, -2147483648];
const int64s = [0n, 1n, -1n, 2n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n)];

function randomScalar(r: Random, type: ScalarType, fieldName: string, huge: boolean): unknown {
  switch (type) {
    case ScalarType.STRING:
      return randomString(r, fieldName, huge);
    case ScalarType.BOOL:
      return r.chance(0.5);
    case ScalarType.BYTES:
      return r.bytes(r.int(64));
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return r.pick([0, -0, 1.5, -1e10, NaN, Infinity, -Infinity, 3.4e38]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return r.chance(0.7) ? r.pick(int64s) : BigInt(r.int(2 ** 31)) * BigInt(r.int(2 ** 31)) * (r.chance(0.5) ? -1n : 1n);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return r.pick([0n, 1n, 2n ** 53n, 2n ** 64n - 1n]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return r.pick([0, 1, 1000, 4294967295]);
    default:
      return r.chance(0.7) ? r.pick(int32s) : r.int(2 ** 32) - 2 ** 31;
  }
}

export function randomJson(r: Random, depth = 0, huge = true): JsonValue {
  switch (depth > 3 ? r.int(4) : r.int(7)) {
    case 0:
      return r.pick([0, -1, 1.5, 1e308, -1e-308, 2 ** 53 + 2]);
    case 1:
      return randomString(r, "", huge);
    case 2:
      return r.chance(0.5);
    case 3:
      return null;
    case 4:
      return Array.from({ length: r.int(4) }, () => randomJson(r, depth + 1, huge));
    default:
      return randomJsonObject(r, depth + 1, huge);
  }
}

export function randomJsonObject(r: Random, depth = 0, huge = true): JsonObject {
  // fromEntries defines own properties, so "__proto__" stays an ordinary key.
  return Object.fromEntries(Array.from({ length: r.int(4) }, () => [randomString(r, "", huge), randomJson(r, depth + 1, huge)]));
}

function randomJsonArray(r: Random): JsonValue[] {
  return Array.from({ length: r.int(4) }, () => r.pick<JsonValue>([randomString(r), r.pick([0, -1, 1e308, 2 ** 53 + 2, 1.5]), null, true]));
}

function randomTimestamp(r: Random) {
  return {
    seconds: r.pick([0n, -1n, 1_700_000_000n, -62135596800n, -62135596801n, 253402300799n, 253402300800n, 2n ** 62n, -(2n ** 62n)]),
    nanos: r.pick([0, 1, 999_999_999, 1_000_000_000, -1, 2147483647]),
  };
}

function randomSingular(r: Random, f: DescField, depth: number, huge: boolean): unknown {
  if (f.fieldKind === "scalar") return randomScalar(r, f.scalar, f.name, huge);
  if (f.fieldKind === "enum") return r.chance(0.6) ? r.pick(f.enum.values).number : r.pick([-1, 4, 99, 2147483647, -2147483648]);
  if (f.fieldKind === "message") return randomMessageValue(r, f.message, depth, huge);
  throw new Error(`${f.name}: not a singular field`);
}

function randomMessageValue(r: Random, desc: DescMessage, depth: number, huge: boolean): unknown {
  if (desc.typeName === "google.protobuf.Struct") return randomJsonObject(r, 0, huge);
  if (desc.typeName === "google.protobuf.Timestamp") return randomTimestamp(r);
  return randomInit(r, desc, depth + 1, huge);
}

function randomInit(r: Random, desc: DescMessage, depth: number, huge = true): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  if (depth > 3) return init;
  for (const f of desc.fields) {
    if (f.oneof || r.chance(0.3)) continue;
    switch (f.fieldKind) {
      case "list": {
        // Now and then one over a limit (1,001 events, 33 type prefixes): copies of one element.
        const over = r.chance(0.05);
        const one = () =>
          f.listKind === "message" ? randomMessageValue(r, f.message, depth, huge && !over) : f.listKind === "enum" ? 99 : randomScalar(r, f.scalar, f.name, huge && !over);
        init[f.localName] = over ? Array(r.pick([33, 1001])).fill(one()) : Array.from({ length: r.int(4) }, one);
        break;
      }
      case "map": {
        const over = r.chance(0.05);
        const value = () =>
          f.mapKind === "message" ? randomMessageValue(r, f.message, depth, huge && !over) : f.mapKind === "enum" ? 99 : randomScalar(r, f.scalar, f.name, huge && !over);
        init[f.localName] = Object.fromEntries(Array.from({ length: over ? 65 : r.int(4) }, (_, i) => [over ? `k${i}` : randomString(r, "", huge), value()]));
        break;
      }
      default:
        init[f.localName] = randomSingular(r, f, depth, huge);
    }
  }
  for (const o of desc.oneofs) {
    if (r.chance(0.3)) continue;
    const f = r.pick(o.fields);
    init[o.localName] = { case: f.localName, value: randomSingular(r, f, depth, huge) };
  }
  return init;
}

export function randomMessage<Desc extends DescMessage>(r: Random, desc: Desc): Message {
  return create(desc, randomInit(r, desc, 0) as never);
}

/** Values that break one of the usual rules of a field of this kind. */
export function hostileValue(r: Random, f: DescField, sample: Message): unknown {
  switch (f.fieldKind) {
    case "scalar":
      if (f.scalar === ScalarType.STRING) return r.pick(["", " ", "not a valid id!", "\u0000", "x".repeat(5000)]);
      if (f.scalar === ScalarType.INT64) return r.pick([-1n, 2n ** 63n - 1n]);
      if (f.scalar === ScalarType.BOOL) return true;
      return r.pick([-1, 2147483647]);
    case "enum":
      return 99;
    case "list": {
      const current = (sample as unknown as Record<string, unknown[]>)[f.localName];
      return r.chance(0.5) || !current.length ? [] : Array(1001).fill(current[0]);
    }
    case "map":
      return r.chance(0.5) ? { "": "v" } : Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    case "message":
      return undefined;
  }
}

/** Bodies that are not a valid encoding of anything, or only of something else. */
export function malformedProtobuf(r: Random, desc: DescMessage): Uint8Array[] {
  const encoded = toBinary(desc, randomMessage(r, desc));
  return [
    r.bytes(1 + r.int(64)),
    r.bytes(200 + r.int(2000)),
    encoded.subarray(0, Math.max(0, encoded.length - 1 - r.int(Math.max(1, encoded.length)))),
    Uint8Array.of(0x0f), // field 1, wire type 7
    Uint8Array.of(0x08, ...Array(11).fill(0xff)), // a varint longer than 10 bytes
    Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f), // a length far past the end
    Uint8Array.of(0x0a, 0x02, 0xc3, 0x28), // invalid UTF-8 in field 1
    new Uint8Array(20_000).fill(0x0b), // 20,000 nested start-group tags
    new Uint8Array(0),
  ];
}

export const malformedJson = [
  "",
  "{",
  "nope",
  "[]",
  "null",
  "42",
  '{"unknownField":1}',
  '{"threadId":42,"pageSize":"x"}',
  '{"pageSize":1e400}',
  '{"events":"nope","types":{}}',
  "[".repeat(20_000),
  deepJson("", 5_000, ""),
  // JSON payloads (google.protobuf.Struct) nested 5,000 deep.
  deepJson('{"threadId":"01ARZ3NDEKTSV4RRFFQ69G5FAV","input":', 5_000, "}"),
  deepJson('{"threadId":"01ARZ3NDEKTSV4RRFFQ69G5FAV","events":[{"type":"custom","payload":', 5_000, "}]}"),
  '\ufeff{"threadId":"\\ud800"}',
];

function deepJson(prefix: string, depth: number, suffix: string): string {
  return `${prefix}${'{"a":'.repeat(depth)}1${"}".repeat(depth)}${suffix}`;
}

