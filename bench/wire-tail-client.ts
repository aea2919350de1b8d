// A lean TailEvents client: one call on a raw node:http2 stream that cuts
// the gRPC frames itself and, of each TailEventsResponse, reads only what the
// bench needs: each event's bounds (its seq and payload are read in place by
// `eventSeq` and `payloadNumber`), and caught_up. Connect's client decodes
// every Event fully (Struct payload, Timestamp), about 15 µs an event here,
// which would put the client's cost in a figure meant for the server's.
import { type ClientHttp2Session, constants } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { TailEventsRequestSchema } from "../gen/eventide/v1/event_service_pb.js";
import { bytesField, FrameReader, grpcFrame, varintField, WireReader } from "./grpc-wire.js";
import { grpcHeaders, statusOf } from "./wire-sessions.js";

const tailHeaders = grpcHeaders("/eventide.v1.EventService/TailEvents");

// TailEventsResponse's items, EventBatch's events, and the Event and Struct fields read.
const item = { event: 1, caughtUp: 2, events: 4 };
const batchEvent = 1;
const eventSeqField = 4;
const eventPayloadField = 6;
const structFieldsField = 1;
const entryValueField = 2;
const numberValueField = 2;

export interface TailRequest {
  threadId: string;
  afterSeq?: number;
  follow: boolean;
  /** max_events_per_response (0: one event a response). */
  perResponse?: number;
}

export interface TailHandlers {
  /** One event: buf[from, end) is the encoded Event. */
  event(buf: Buffer, from: number, end: number): void;
  caughtUp(lastSeq: number): void;
  /** The call is over: `problem` says why, unless it was cancelled here or ended with status OK. */
  ended(problem: string | undefined): void;
}

/** Opens one TailEvents call; returns its cancel. */
export function wireTail(session: ClientHttp2Session, req: TailRequest, h: TailHandlers): () => void {
  const request = create(TailEventsRequestSchema, {
    threadId: req.threadId,
    afterSeq: BigInt(req.afterSeq ?? 0),
    follow: req.follow,
    maxEventsPerResponse: req.perResponse ?? 0,
  });
  const stream = session.request(tailHeaders);
  const frames = new FrameReader();
  const onMessage = (buf: Buffer, from: number, end: number) => readTailItem(buf, from, end, h);
  let cancelled = false;
  let status: string | undefined;
  stream.on("response", (headers) => (status = statusOf(headers) ?? status));
  stream.on("trailers", (headers) => (status = statusOf(headers) ?? status));
  stream.on("data", (chunk: Buffer) => frames.push(chunk, onMessage));
  stream.on("error", () => {});
  stream.on("close", () => {
    if (cancelled || status === "0") h.ended(undefined);
    else h.ended(status === undefined ? `stream closed without a status (code ${stream.rstCode})` : `ended with grpc-status ${status}`);
  });
  stream.end(grpcFrame(toBinary(TailEventsRequestSchema, request)));
  return () => {
    cancelled = true;
    if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
  };
}

/** One TailEventsResponse: its event, or each event of its batch, to `h.event`; caught_up to `h.caughtUp`. */
function readTailItem(buf: Buffer, from: number, end: number, h: TailHandlers): void {
  const r = new WireReader(buf, from, end);
  while (!r.done) {
    const [no, wireType] = r.tag();
    const [start, stop] = r.skip(wireType);
    if (wireType !== WireType.LengthDelimited) continue;
    if (no === item.event) h.event(buf, start, stop);
    else if (no === item.caughtUp) h.caughtUp(varintField(buf, start, stop, 1));
    else if (no === item.events) {
      const batch = new WireReader(buf, start, stop);
      while (!batch.done) {
        const [entry, entryType] = batch.tag();
        const [eventStart, eventEnd] = batch.skip(entryType);
        if (entry === batchEvent && entryType === WireType.LengthDelimited) h.event(buf, eventStart, eventEnd);
      }
    }
  }
}

export function eventSeq(buf: Buffer, from: number, end: number): number {
  return varintField(buf, from, end, eventSeqField);
}

/** The value of the first entry of the event's payload when it is a number (the bench's `sentAt`), else NaN. */
export function payloadNumber(buf: Buffer, from: number, end: number): number {
  const payload = bytesField(buf, from, end, eventPayloadField);
  const entry = payload && bytesField(buf, payload[0], payload[1], structFieldsField);
  const value = entry && bytesField(buf, entry[0], entry[1], entryValueField);
  if (!value) return Number.NaN;
  const r = new WireReader(buf, value[0], value[1]);
  while (!r.done) {
    const [no, wireType] = r.tag();
    if (no === numberValueField && wireType === WireType.Bit64) return buf.readDoubleLE(r.pos);
    r.skip(wireType);
  }
  return Number.NaN;
}
