// Records (what the tiers store) to proto messages (what crosses the wire).
import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
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

// ---------------------------------------------------------------------------
// The binary wire form of an Event, written by hand. Replays stream hundreds of
// thousands of events: building an Event message (its payload as a
// google.protobuf.Struct) and running the reflective toBinary on it costs
// several times more than writing the same bytes directly. The output is byte
// for byte what toBinary(EventSchema, toEvent(e)) gives (fields in number
// order, implicit-presence fields left out at their zero value, map entries
// with both key and value, the payload as a Struct): checked byte for byte
// against toBinary on events with every kind of JSON value, and the RPC tests
// decode what tails send with the generated schemas.

const enum Wire {
  Varint = 0,
  Bit64 = 1,
  Delimited = 2,
}

/** One scratch buffer, reused: encoding is synchronous, so nothing else writes it meanwhile. */
let buf = Buffer.allocUnsafe(64 * 1024);
let pos = 0;

function ensure(bytes: number): void {
  if (pos + bytes <= buf.length) return;
  const grown = Buffer.allocUnsafe(Math.max(buf.length * 2, pos + bytes));
  buf.copy(grown, 0, 0, pos);
  buf = grown;
}

/** A non-negative integer below 2^53. */
function varint(n: number): void {
  ensure(10);
  while (n > 127) {
    buf[pos++] = (n & 127) | 128;
    n = n > 0x7fffffff ? Math.floor(n / 128) : n >>> 7;
  }
  buf[pos++] = n;
}

/** int32 and int64 as protobuf writes them: a negative number is ten bytes of two's complement. */
function signed(n: number): void {
  if (n >= 0) return varint(n);
  let v = BigInt.asUintN(64, BigInt(n));
  ensure(10);
  while (v > 127n) {
    buf[pos++] = Number(v & 127n) | 128;
    v >>= 7n;
  }
  buf[pos++] = Number(v);
}

function tag(field: number, wire: Wire): void {
  varint((field << 3) | wire);
}

function varintSize(n: number): number {
  let size = 1;
  while (n > 127) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** The length and UTF-8 bytes of a string (lone surrogates become U+FFFD, as with TextEncoder). */
function text(s: string): void {
  ensure(s.length * 3 + 10);
  if (s.length <= 42) {
    // At most 126 bytes: a one-byte length, written after the bytes are.
    const n = buf.write(s, pos + 1, "utf8");
    buf[pos] = n;
    pos += 1 + n;
    return;
  }
  const n = Buffer.byteLength(s, "utf8");
  varint(n);
  pos += buf.write(s, pos, "utf8");
}

/** Starts a length-delimited body: one byte is kept for its length. */
function fork(): number {
  ensure(1);
  return pos++;
}

/** Ends the body begun at `start`, moving it when its length needs more than one byte. */
function join(start: number): void {
  const len = pos - start - 1;
  if (len < 128) {
    buf[start] = len;
    return;
  }
  const size = varintSize(len);
  ensure(size - 1);
  buf.copyWithin(start + size, start + 1, pos);
  pos += size - 1;
  const end = pos;
  pos = start;
  varint(len);
  pos = end;
}

/** google.protobuf.Struct: map<string, Value> fields = 1. */
function struct(obj: JsonObject): void {
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    if (value === undefined) continue;
    tag(1, Wire.Delimited);
    const entry = fork();
    tag(1, Wire.Delimited);
    text(key);
    tag(2, Wire.Delimited);
    const v = fork();
    jsonValue(value);
    join(v);
    join(entry);
  }
}

/** google.protobuf.Value: the oneof kind, always written (it has presence). */
function jsonValue(value: JsonValue): void {
  switch (typeof value) {
    case "string":
      tag(3, Wire.Delimited);
      text(value);
      return;
    case "number":
      tag(2, Wire.Bit64);
      ensure(8);
      buf.writeDoubleLE(value, pos);
      pos += 8;
      return;
    case "boolean":
      tag(4, Wire.Varint);
      varint(value ? 1 : 0);
      return;
    case "object": {
      if (value === null) {
        tag(1, Wire.Varint);
        varint(0);
        return;
      }
      if (Array.isArray(value)) {
        tag(6, Wire.Delimited);
        const list = fork();
        for (const item of value) {
          tag(1, Wire.Delimited);
          const v = fork();
          jsonValue(item);
          join(v);
        }
        join(list);
        return;
      }
      tag(5, Wire.Delimited);
      const s = fork();
      struct(value as JsonObject);
      join(s);
      return;
    }
    default:
      throw new Error(`a payload cannot hold a ${typeof value}`);
  }
}

function stringField(field: number, s: string): void {
  if (s === "") return;
  tag(field, Wire.Delimited);
  text(s);
}

function eventFields(e: StoredEvent): void {
  stringField(1, e.eventId);
  stringField(2, e.threadId);
  stringField(3, e.turnId);
  if (e.seq !== 0) {
    tag(4, Wire.Varint);
    signed(e.seq);
  }
  stringField(5, e.type);
  if (e.payload !== undefined) {
    tag(6, Wire.Delimited);
    const p = fork();
    struct(e.payload);
    join(p);
  }
  for (const key of Object.keys(e.metadata ?? {})) {
    tag(7, Wire.Delimited);
    const entry = fork();
    tag(1, Wire.Delimited);
    text(key);
    tag(2, Wire.Delimited);
    text(e.metadata[key]);
    join(entry);
  }
  if (e.schemaVersion !== 0) {
    tag(8, Wire.Varint);
    signed(e.schemaVersion);
  }
  if (e.createdAt !== undefined) timestampField(9, e.createdAt);
  stringField(10, e.tenantId);
  stringField(11, e.level);
}

/** A google.protobuf.Timestamp field of `ms` since the epoch. */
function timestampField(field: number, ms: number): void {
  // As timestampFromMs computes them.
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms - seconds * 1000) * 1_000_000;
  tag(field, Wire.Delimited);
  const t = fork();
  if (seconds !== 0) {
    tag(1, Wire.Varint);
    signed(seconds);
  }
  if (nanos !== 0) {
    tag(2, Wire.Varint);
    signed(nanos);
  }
  join(t);
}

function copyOut(): Uint8Array {
  const out = new Uint8Array(pos);
  out.set(buf.subarray(0, pos));
  return out;
}

/**
 * A TailEventsResponse whose `heartbeat` (field 3) has scanned_seq (1) and sent_at (2), written
 * directly: 10,000 idle tails send ~670 of these a second, and the reflective toBinary made them
 * most of an idle server's garbage.
 */
export function encodeHeartbeatResponse(scannedSeq: number, sentAtMs: number): Uint8Array {
  pos = 0;
  tag(3, Wire.Delimited);
  const heartbeat = fork();
  if (scannedSeq !== 0) {
    tag(1, Wire.Varint);
    signed(scannedSeq);
  }
  timestampField(2, sentAtMs);
  join(heartbeat);
  return copyOut();
}

/** toBinary(EventSchema, toEvent(e)), written directly. */
export function encodeEvent(e: StoredEvent): Uint8Array {
  pos = 0;
  eventFields(e);
  return copyOut();
}

/**
 * The Event as the body of a length-delimited field: its length, then its
 * bytes — what a message's unknown field of wire type 2 holds.
 */
export function encodeEventDelimited(e: StoredEvent): Uint8Array {
  pos = 0;
  const start = fork();
  eventFields(e);
  join(start);
  const out = copyOut();
  shrink();
  return out;
}

/**
 * encodeEventDelimited for a page of events at once: a few allocations (of
 * up to about 1 MiB) hold them all, each result is a view of its part (no
 * copy and no garbage per event).
 */
export function encodeEventsDelimited(events: StoredEvent[]): Uint8Array[] {
  const out: Uint8Array[] = new Array(events.length);
  let first = 0;
  const ends: number[] = [];
  pos = 0;
  for (let i = 0; i < events.length; i++) {
    const start = fork();
    eventFields(events[i]);
    join(start);
    ends.push(pos);
    if (pos >= slabBytes || i === events.length - 1) {
      // A slab is full (or this was the last event): its events become views of one copy.
      const slab = copyOut();
      for (let j = first, from = 0; j <= i; from = ends[j - first], j++) out[j] = slab.subarray(from, ends[j - first]);
      first = i + 1;
      ends.length = 0;
      pos = 0;
    }
  }
  shrink();
  return out;
}

const slabBytes = 1024 * 1024;

/**
 * An append's events, encoded once for two uses: its live frames (written while the append
 * returns, see live-frames.ts) and the echo in the append's answer, which comes next.
 */
const kept = new WeakMap<StoredEvent[], Uint8Array[]>();

/** encodeEventsDelimited, kept for encodedEventsDelimited of the same array. */
export function encodeEventsDelimitedKept(events: StoredEvent[]): Uint8Array[] {
  const out = encodeEventsDelimited(events);
  kept.set(events, out);
  return out;
}

/** encodeEventsDelimited, or what encodeEventsDelimitedKept wrote for this very array (the same bytes). */
export function encodedEventsDelimited(events: StoredEvent[]): Uint8Array[] {
  return kept.get(events) ?? encodeEventsDelimited(events);
}

/**
 * Events as EventBatch messages, each as the body of a length-delimited field
 * (its length, then `repeated Event events = 1`): at most `maxEvents` events
 * a batch, and no more than `maxBytes` bytes unless one event alone is larger.
 */
export function encodeEventBatchesDelimited(events: StoredEvent[], maxEvents: number, maxBytes: number): { data: Uint8Array; count: number }[] {
  const batches: { data: Uint8Array; count: number }[] = [];
  let i = 0;
  while (i < events.length) {
    pos = 0;
    const batch = fork();
    let count = 0;
    while (i < events.length && count < maxEvents) {
      const eventStart = pos;
      tag(1, Wire.Delimited);
      const body = fork();
      eventFields(events[i]);
      join(body);
      // Over the bound: the event leads the next batch instead (written again there).
      if (count > 0 && pos - batch > maxBytes) {
        pos = eventStart;
        break;
      }
      count++;
      i++;
    }
    join(batch);
    batches.push({ data: copyOut(), count });
  }
  shrink();
  return batches;
}

/** A huge event grew the scratch buffer: let it go. */
function shrink(): void {
  if (buf.length > 4 * slabBytes) buf = Buffer.allocUnsafe(64 * 1024);
}
