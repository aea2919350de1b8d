// A live tail's responses as bytes on the wire: the events that arrived
// together, encoded once and framed once (gRPC-style envelopes, which gRPC,
// gRPC-Web and Connect streaming share) for every tailer of the thread that
// asked for the same batching. The bytes are what the tail's generator would
// have yielded: a TailEventsResponse with `event` (field 1) per event, or with
// `events` (field 4) per batch of up to max_events_per_response.
import type { StoredEvent } from "../domain/records.js";
import type { LiveDelivery } from "../live/subscription.js";
import { encodeEventBatchesDelimited, encodeEventsDelimitedKept } from "./convert.js";

export type LiveFrames = LiveDelivery["frames"];

/** A response's only field: its tag byte (field number, wire type 2), then the delimited message. */
const eventTag = (1 << 3) | 2;
const eventsTag = (4 << 3) | 2;

const byBatching = new Map<number, LiveFrames>();

/** The framing for tails with this max_events_per_response (0: one event a response), shared by every tail. */
export function liveFrames(perResponse: number, maxBatchBytes: number): LiveFrames {
  let frames = byBatching.get(perResponse);
  if (frames) return frames;
  const cache = new WeakMap<StoredEvent[], { bytes: Buffer; responses: number }>();
  frames = (events) => {
    let framed = cache.get(events);
    if (!framed) {
      const messages = perResponse === 0 ? encodeEventsDelimitedKept(events) : encodeEventBatchesDelimited(events, perResponse, maxBatchBytes).map((b) => b.data);
      framed = { bytes: envelopes(perResponse === 0 ? eventTag : eventsTag, messages), responses: messages.length };
      cache.set(events, framed);
    }
    return framed;
  };
  byBatching.set(perResponse, frames);
  return frames;
}

/** One envelope per message (flags 0, a 4-byte big-endian length, the tag byte, the delimited data), in one Buffer. */
function envelopes(tag: number, messages: Uint8Array[]): Buffer {
  let size = 0;
  for (const m of messages) size += 6 + m.byteLength;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const m of messages) {
    envelopeHeader(out, at, m.byteLength + 1);
    out[at + 5] = tag;
    out.set(m, at + 6);
    at += 6 + m.byteLength;
  }
  return out;
}

/**
 * A TailEventsResponse with `heartbeat` (field 3) framed, as toBinary would encode it: 10,000 idle
 * tails send ~670 of these a second, and the generic encoder made them most of an idle server's
 * garbage. Heartbeat: scanned_seq (1, varint), sent_at (2, a Timestamp: seconds 1, nanos 2).
 */
export function heartbeatFrame(scannedSeq: number, atMs: number): Buffer {
  const seconds = Math.floor(atMs / 1000);
  const nanos = (atMs - seconds * 1000) * 1_000_000;
  const timestampSize = fieldSize(seconds) + fieldSize(nanos);
  const heartbeatSize = fieldSize(scannedSeq) + 1 + varintSize(timestampSize) + timestampSize;
  const responseSize = 1 + varintSize(heartbeatSize) + heartbeatSize;
  const out = Buffer.allocUnsafe(5 + responseSize);
  envelopeHeader(out, 0, responseSize);
  let at = 5;
  out[at++] = heartbeatTag;
  at = writeVarint(out, at, heartbeatSize);
  at = writeField(out, at, 1, scannedSeq);
  out[at++] = (2 << 3) | 2;
  at = writeVarint(out, at, timestampSize);
  at = writeField(out, at, 1, seconds);
  writeField(out, at, 2, nanos);
  return out;
}

const heartbeatTag = (3 << 3) | 2;

/** A varint field's size with its tag; proto3 leaves a zero out. */
function fieldSize(value: number): number {
  return value === 0 ? 0 : 1 + varintSize(value);
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

function writeField(out: Buffer, at: number, no: number, value: number): number {
  if (value === 0) return at;
  out[at++] = no << 3;
  return writeVarint(out, at, value);
}

/** A non-negative integer up to 2^53 (seqs, epoch seconds), as a varint; division, not bit operations, past 2^31. */
function writeVarint(out: Buffer, at: number, value: number): number {
  while (value >= 128) {
    out[at++] = (value % 128) | 128;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

/** Flags 0 (uncompressed), then the message's length, 4 bytes big-endian. */
function envelopeHeader(out: Buffer, at: number, length: number): void {
  out[at] = 0;
  out.writeUInt32BE(length, at + 1);
}
