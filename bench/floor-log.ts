// What the bare floors (bench/floor-http2.ts on node:http2, bench/floor-grpc-js.ts
// on @grpc/grpc-js) do with each call, on messages as bytes: the work of
// eventide's hot path minus storage, validation, auth, interceptors and logs.
// AppendEvents reads the request in place, gives each event the next seq of
// its thread, writes each Event once (id, thread, seq, type, payload,
// metadata, created_at, tenant, level: what eventide's events carry, the
// input's bytes copied as they are), keeps it, echoes the events as eventide
// does, and hands each event's live item, prepared once, to the thread's
// tails. TailEvents sends the kept history (one event or a batch a response),
// caught_up, then live items. Both floors share this file so that only the
// transport differs between them.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { defaultTenant } from "../server/auth.js";
import { newId } from "../server/domain/ids.js";
import { TailEventsRequestSchema } from "../gen/eventide/v1/event_service_pb.js";
import { CreateThreadResponseSchema, GetThreadRequestSchema, GetThreadResponseSchema } from "../gen/eventide/v1/turn_service_pb.js";
import { HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { delimitedSize, varintSize, WireReader, writeDelimited, writeVarint, writeVarintField } from "./grpc-wire.js";

/** A gRPC status other than OK, with its code. */
export class FloorError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const notFound = 5;

/** Where a tail's items go: the transport's stream. */
export interface TailSink {
  /** Writes one message; false asks the writer to wait for `drained()`. */
  write(message: Buffer): boolean;
  drained(): Promise<void>;
  /** Writes a live item as `prepareLive` made it (the same bytes go to every tail). */
  writeLive(prepared: Buffer): void;
  /** Ends the call with status OK. */
  end(): void;
  /** Settles when the call is over (ended, cancelled or broken). */
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

interface FloorThread {
  threadId: string;
  threadIdBytes: Buffer;
  /** Every event as written once, index seq - 1. */
  events: Buffer[];
  tails: Set<(prepared: Buffer) => void>;
}

/** The RPCs, by path, the floors answer. */
export const floorPaths = {
  health: "/grpc.health.v1.Health/Check",
  createThread: "/eventide.v1.TurnService/CreateThread",
  getThread: "/eventide.v1.TurnService/GetThread",
  appendEvents: "/eventide.v1.EventService/AppendEvents",
  tailEvents: "/eventide.v1.EventService/TailEvents",
} as const;

const tenantBytes = Buffer.from(defaultTenant);
const levelBytes = Buffer.from("info");
const createdType = Buffer.from("thread.created");
const servingResponse = Buffer.from(toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: ServingStatus.SERVING })));

// Field numbers of EventInput, Event, AppendEventsResponse, TailEventsResponse and EventBatch.
const input = { eventId: 1, type: 2, payload: 3, metadata: 4, schemaVersion: 5 };
const event = { eventId: 1, threadId: 2, seq: 4, type: 5, payload: 6, metadata: 7, schemaVersion: 8, createdAt: 9, tenantId: 10, level: 11 };

export class FloorLog {
  private readonly threads = new Map<string, FloorThread>();

  /** `prepareLive` turns a live TailEventsResponse into what every tail's `writeLive` takes (a gRPC frame, or the message itself). */
  constructor(private readonly prepareLive: (message: Buffer) => Buffer) {}

  health(): Buffer {
    return servingResponse;
  }

  createThread(): Buffer {
    const threadId = newId();
    const thread: FloorThread = { threadId, threadIdBytes: Buffer.from(threadId), events: [], tails: new Set() };
    thread.events.push(eventBytes(thread, 1, { type: [0, createdType.length], payload: undefined, metadata: [] }, createdType, timestampNow()));
    this.threads.set(threadId, thread);
    return Buffer.from(toBinary(CreateThreadResponseSchema, create(CreateThreadResponseSchema, { thread: { threadId, lastSeq: 1n } })));
  }

  getThread(request: Uint8Array): Buffer {
    const thread = this.threadOf(fromBinary(GetThreadRequestSchema, request).threadId);
    const lastSeq = BigInt(thread.events.length);
    return Buffer.from(toBinary(GetThreadResponseSchema, create(GetThreadResponseSchema, { thread: { threadId: thread.threadId, lastSeq } })));
  }

  appendEvents(request: Buffer): Buffer {
    const r = new WireReader(request, 0, request.length);
    let threadId = "";
    const inputs: [number, number][] = [];
    while (!r.done) {
      const [no, wireType] = r.tag();
      const [from, end] = r.skip(wireType);
      if (no === 1) threadId = request.toString("latin1", from, end);
      else if (no === 5) inputs.push([from, end]);
    }
    const thread = this.threadOf(threadId);
    const createdAt = timestampNow();
    const first = thread.events.length + 1;
    const written = inputs.map(([from, end], i) => eventBytes(thread, first + i, readInput(request, from, end), request, createdAt));
    thread.events.push(...written);
    if (thread.tails.size > 0) {
      for (const e of written) {
        const prepared = this.prepareLive(message([[1, e]]));
        for (const push of thread.tails) push(prepared);
      }
    }
    const last = first + written.length - 1;
    const size = 1 + varintSize(first) + 1 + varintSize(last) + written.reduce((n, e) => n + delimitedSize(e.length), 0);
    const response = Buffer.allocUnsafe(size);
    let pos = writeVarintField(response, 0, 1, first);
    pos = writeVarintField(response, pos, 2, last);
    for (const e of written) pos = writeDelimited(response, pos, 3, e);
    return response;
  }

  /** Serves one TailEvents call on `sink`; settles when the call is over. */
  async tail(request: Uint8Array, sink: TailSink): Promise<void> {
    const req = fromBinary(TailEventsRequestSchema, request);
    const thread = this.threadOf(req.threadId);
    // History is what the thread holds now; what is appended from here on waits until caught_up is written.
    const history = thread.events.length;
    const pending: Buffer[] = [];
    let live = false;
    const push = (prepared: Buffer) => (live ? sink.writeLive(prepared) : pending.push(prepared));
    thread.tails.add(push);
    try {
      const perResponse = Math.max(1, req.maxEventsPerResponse);
      for (let seq = Number(req.afterSeq) + 1; seq <= history && !sink.isClosed(); seq += perResponse) {
        const events = thread.events.slice(seq - 1, Math.min(history, seq - 1 + perResponse));
        const item = req.maxEventsPerResponse === 0 ? message([[1, events[0]]]) : message([[4, message(events.map((e) => [1, e]))]]);
        if (!sink.write(item)) await Promise.race([sink.drained(), sink.closed]);
      }
      if (sink.isClosed()) return;
      sink.write(message([[2, message([], [[1, history]])]]));
      if (!req.follow) return sink.end();
      for (const prepared of pending) sink.writeLive(prepared);
      live = true;
      await sink.closed;
    } finally {
      thread.tails.delete(push);
    }
  }

  private threadOf(threadId: string): FloorThread {
    const thread = this.threads.get(threadId);
    if (!thread) throw new FloorError(notFound, `thread ${threadId} not found`);
    return thread;
  }
}

/** Where an EventInput's fields sit in the request. */
interface InputFields {
  eventId?: [number, number];
  type?: [number, number];
  payload?: [number, number];
  metadata: [number, number][];
}

function readInput(buf: Buffer, from: number, end: number): InputFields {
  const r = new WireReader(buf, from, end);
  const fields: InputFields = { metadata: [] };
  while (!r.done) {
    const [no, wireType] = r.tag();
    const bounds = r.skip(wireType);
    if (wireType !== WireType.LengthDelimited) continue;
    if (no === input.eventId) fields.eventId = bounds;
    else if (no === input.type) fields.type = bounds;
    else if (no === input.payload) fields.payload = bounds;
    else if (no === input.metadata) fields.metadata.push(bounds);
  }
  return fields;
}

/** One Event, written once: the input's type, payload and metadata bytes as they came, in `source`. */
function eventBytes(thread: FloorThread, seq: number, f: InputFields, source: Buffer, createdAt: Buffer): Buffer {
  const eventId = f.eventId ? source.subarray(...f.eventId) : Buffer.from(newId(), "latin1");
  const type = f.type ? source.subarray(...f.type) : Buffer.alloc(0);
  const payload = f.payload ? source.subarray(...f.payload) : undefined;
  const metadata = f.metadata.map((b) => source.subarray(...b));
  const size =
    delimitedSize(eventId.length) +
    delimitedSize(thread.threadIdBytes.length) +
    1 + varintSize(seq) +
    delimitedSize(type.length) +
    (payload ? delimitedSize(payload.length) : 0) +
    metadata.reduce((n, m) => n + delimitedSize(m.length), 0) +
    2 +
    delimitedSize(createdAt.length) +
    delimitedSize(tenantBytes.length) +
    delimitedSize(levelBytes.length);
  const out = Buffer.allocUnsafe(size);
  let pos = writeDelimited(out, 0, event.eventId, eventId);
  pos = writeDelimited(out, pos, event.threadId, thread.threadIdBytes);
  pos = writeVarintField(out, pos, event.seq, seq);
  pos = writeDelimited(out, pos, event.type, type);
  if (payload) pos = writeDelimited(out, pos, event.payload, payload);
  for (const m of metadata) pos = writeDelimited(out, pos, event.metadata, m);
  pos = writeVarintField(out, pos, event.schemaVersion, 1);
  pos = writeDelimited(out, pos, event.createdAt, createdAt);
  pos = writeDelimited(out, pos, event.tenantId, tenantBytes);
  writeDelimited(out, pos, event.level, levelBytes);
  return out;
}

/** A google.protobuf.Timestamp of now, encoded. */
function timestampNow(): Buffer {
  const ms = Date.now();
  return message([], [
    [1, Math.floor(ms / 1000)],
    [2, (ms % 1000) * 1e6],
  ]);
}

/** A message of length-delimited fields (numbers 1-15), then varint fields. */
function message(delimited: [number, Uint8Array][], varints: [number, number][] = []): Buffer {
  const size = delimited.reduce((n, [, b]) => n + delimitedSize(b.length), 0) + varints.reduce((n, [, v]) => n + 1 + varintSize(v), 0);
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  for (const [no, bytes] of delimited) pos = writeDelimited(out, pos, no, bytes);
  for (const [no, v] of varints) pos = writeVarintField(out, pos, no, v);
  return out;
}
