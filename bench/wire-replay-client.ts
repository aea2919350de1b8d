// A lean gRPC client for the replay scenarios: one TailEvents call over
// node:http2 that reads the wire itself, each response's envelope and, of each
// Event, only its seq (to check order and count). Connect's client decodes
// every Event fully (Struct payload, Timestamp) at about 15 µs an event on
// this machine, which caps a replay it reads near 60,000 events/s whatever the
// server does; this client shows what the server delivers past that.
import { connect, constants } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
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
  const problems: string[] = [];
  const session = connect(baseUrl);
  // Without a listener, a refused or reset connection would kill the bench process.
  session.on("error", (err) => {
    if (problems.length < 3) problems.push(`connection: ${String(err)}`);
  });
  let [events, expected, eventBytes, firstEventMs] = [0, 1, 0, Number.NaN];
  let caughtUp: number | undefined;
  const started = nowMs();
  let ended = started;
  const onEvent = (seq: number, bytes: number) => {
    if (events === 0) firstEventMs = nowMs() - started;
    if (seq !== expected && problems.length < 3) problems.push(`seq ${seq} where ${expected} was due`);
    expected = seq + 1;
    events++;
    eventBytes += bytes;
  };
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
        let offset = 0;
        while (pending.length - offset >= 5) {
          const length = pending.readUInt32BE(offset + 1);
          if (pending.length - offset < 5 + length) break;
          const lastSeqCaughtUp = readItem(pending, offset + 5, offset + 5 + length, onEvent);
          offset += 5 + length;
          if (lastSeqCaughtUp !== undefined) {
            caughtUp = lastSeqCaughtUp;
            ended = nowMs();
            break;
          }
        }
        // A replay is done at caught_up: leaving the loop cancels the call (as the Connect client's break does).
        if (caughtUp !== undefined) break;
        pending = pending.subarray(offset);
      }
    } finally {
      clearTimeout(timer);
    }
    if (caughtUp === undefined && status !== "0") problems.push(`the call ended with grpc-status ${status ?? "(none)"} after ${events} events`);
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

// The reader walks a response in place (no views or objects per event: the
// client's own cost is what this client exists to keep out of the figure).
let at = 0;

function varint(buf: Uint8Array): number {
  let value = 0;
  for (let scale = 1; ; scale *= 128) {
    const b = buf[at++];
    value += (b & 127) * scale;
    if (b < 128) return value;
  }
}

function skip(buf: Uint8Array, wireType: number): void {
  if (wireType === WireType.Varint) varint(buf);
  else if (wireType === WireType.Bit64) at += 8;
  else if (wireType === WireType.LengthDelimited) {
    const length = varint(buf); // read before `at` is: `at += varint(buf)` would add to the old position
    at += length;
  }
  else if (wireType === WireType.Bit32) at += 4;
  else throw new Error(`unexpected wire type ${wireType}`);
}

/** The int64 field `field` of the message in buf[from, end) (0 when absent). */
function varintField(buf: Uint8Array, from: number, end: number, field: number): number {
  at = from;
  let found = 0;
  while (at < end) {
    const tag = varint(buf);
    if (tag === (field << 3) + WireType.Varint) found = varint(buf);
    else skip(buf, tag & 7);
  }
  return found;
}

/**
 * Reads one TailEventsResponse in buf[from, end): each event's seq and size
 * go to onEvent (one `event`, or each of an `events` batch); returns
 * caught_up's last_seq, or undefined for any other item.
 */
function readItem(buf: Uint8Array, from: number, end: number, onEvent: (seq: number, bytes: number) => void): number | undefined {
  at = from;
  while (at < end) {
    const tag = varint(buf);
    const no = tag >>> 3;
    if ((tag & 7) !== WireType.LengthDelimited || (no !== eventField && no !== caughtUpField && no !== eventsField)) {
      skip(buf, tag & 7);
      continue;
    }
    const length = varint(buf);
    const inner = at;
    if (no === caughtUpField) return varintField(buf, inner, inner + length, 1);
    if (no === eventField) {
      onEvent(varintField(buf, inner, inner + length, seqField), length);
      at = inner + length;
      continue;
    }
    for (let next = inner; next < inner + length; ) {
      at = next;
      const entryTag = varint(buf);
      if (entryTag !== (batchEventField << 3) + WireType.LengthDelimited) {
        skip(buf, entryTag & 7);
        next = at;
        continue;
      }
      const eventLength = varint(buf);
      const eventStart = at;
      next = eventStart + eventLength;
      onEvent(varintField(buf, eventStart, next, seqField), eventLength);
    }
    at = inner + length;
  }
  return undefined;
}
