// A lean gRPC client for the replay scenarios: one TailEvents call over
// node:http2 that reads the wire itself, each response's envelope and, of each
// Event, only its seq (to check order and count). Connect's client decodes
// every Event fully (Struct payload, Timestamp) at about 15 µs an event on
// this machine, which caps a replay it reads near 60,000 events/s whatever the
// server does; this client shows what the server delivers past that.
import { connect, constants } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { TailEventsRequestSchema } from "../gen/eventide/v1/event_service_pb.js";
import { nowMs } from "./clock.js";
import type { Replayed } from "./replay-client.js";

/** TailEventsResponse fields, EventBatch's events field, and the Event's seq field. */
const eventField = 1;
const caughtUpField = 2;
const eventsField = 4;
const batchEventField = 1;
const seqField = 4;

export async function wireReplayFromStart(baseUrl: string, threadId: string, lastSeq: number, timeoutMs: number, perResponse: number): Promise<Replayed> {
  const session = connect(baseUrl);
  const problems: string[] = [];
  let [events, expected, eventBytes, firstEventMs] = [0, 1, 0, Number.NaN];
  let caughtUp: number | undefined;
  const started = nowMs();
  let ended = started;
  const request = toBinary(TailEventsRequestSchema, create(TailEventsRequestSchema, { threadId, afterSeq: 0n, follow: false, maxEventsPerResponse: perResponse }));
  const envelope = Buffer.alloc(5 + request.length);
  envelope.writeUInt32BE(request.length, 1);
  envelope.set(request, 5);
  try {
    const stream = session.request({
      [constants.HTTP2_HEADER_METHOD]: "POST",
      [constants.HTTP2_HEADER_PATH]: "/eventide.v1.EventService/TailEvents",
      "content-type": "application/grpc+proto",
      te: "trailers",
    });
    stream.end(envelope);
    const timer = setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), timeoutMs);
    let status: string | undefined;
    stream.on("trailers", (trailers) => (status = String(trailers["grpc-status"] ?? "")));
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
    });
    let pending: Buffer = Buffer.alloc(0);
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        let at = 0;
        while (pending.length - at >= 5) {
          const length = pending.readUInt32BE(at + 1);
          if (pending.length - at < 5 + length) break;
          const message = pending.subarray(at + 5, at + 5 + length);
          at += 5 + length;
          const item = readItem(message);
          if (item.kind === "caught-up") {
            caughtUp = item.lastSeq;
            ended = nowMs();
            break;
          }
          for (const event of item.kind === "events" ? item.events : []) {
            if (events === 0) firstEventMs = nowMs() - started;
            if (event.seq !== expected && problems.length < 3) problems.push(`seq ${event.seq} where ${expected} was due`);
            expected = event.seq + 1;
            events++;
            eventBytes += event.bytes;
          }
        }
        // A replay is done at caught_up: leaving the loop cancels the call (as the Connect client's break does).
        if (caughtUp !== undefined) break;
        pending = pending.subarray(at);
      }
    } finally {
      clearTimeout(timer);
    }
    if (caughtUp === undefined && status !== "0") problems.push(`the call ended with grpc-status ${status ?? "(none)"}${ended === started ? ` after ${events} events` : ""}`);
  } catch (err) {
    problems.push(`stream failed: ${String(err)}`);
  } finally {
    session.close();
  }
  if (caughtUp === undefined && problems.length === 0) problems.push(`stream ended without caught_up after ${events} events`);
  if (caughtUp !== undefined && caughtUp !== lastSeq) problems.push(`caught_up at ${caughtUp}, the thread ends at ${lastSeq}`);
  if (events !== lastSeq && caughtUp !== undefined) problems.push(`${events} events for seqs 1-${lastSeq}`);
  if (ended === started) ended = nowMs();
  return { events, seconds: (ended - started) / 1000, firstEventMs, bytes: eventBytes, bytesLabel: "encoded event", problems };
}

type Seen = { seq: number; bytes: number };
type Item = { kind: "events"; events: Seen[] } | { kind: "caught-up"; lastSeq: number } | { kind: "other" };

/** The oneof of one TailEventsResponse: its events' seqs and sizes (one `event`, or an `events` batch), or caught_up's last_seq. */
function readItem(message: Uint8Array): Item {
  const reader = new BinaryReader(message);
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (wireType === WireType.LengthDelimited && (no === eventField || no === caughtUpField || no === eventsField)) {
      const inner = reader.bytes();
      if (no === eventField) return { kind: "events", events: [seen(inner)] };
      if (no === caughtUpField) return { kind: "caught-up", lastSeq: varintField(inner, 1) };
      const events: Seen[] = [];
      const batch = new BinaryReader(inner);
      while (batch.pos < batch.len) {
        const [field, type] = batch.tag();
        if (field === batchEventField && type === WireType.LengthDelimited) events.push(seen(batch.bytes()));
        else batch.skip(type);
      }
      return { kind: "events", events };
    }
    reader.skip(wireType);
  }
  return { kind: "other" };
}

function seen(event: Uint8Array): Seen {
  return { seq: varintField(event, seqField), bytes: event.length };
}

function varintField(message: Uint8Array, field: number): number {
  const reader = new BinaryReader(message);
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (no === field && wireType === WireType.Varint) return Number(reader.int64());
    reader.skip(wireType);
  }
  return 0;
}
