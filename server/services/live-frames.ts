// A live tail's responses as bytes on the wire: the events that arrived
// together, encoded once and framed once (gRPC-style envelopes, which gRPC,
// gRPC-Web and Connect streaming share) for every tailer of the thread that
// asked for the same batching. The bytes are what the tail's generator would
// have yielded: a TailEventsResponse with `event` (field 1) per event, or with
// `events` (field 4) per batch of up to max_events_per_response.
import type { StoredEvent } from "../domain/records.js";
import type { LiveDelivery } from "../live/subscription.js";
import { envelope } from "../wire/wire-protocols.js";
import { encodeEventBatchesDelimited, encodeEventsDelimitedKept, encodeHeartbeatResponse } from "./convert.js";

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

/** A heartbeat response framed, as toBinary and the tail's framing would write it. */
export function heartbeatFrame(scannedSeq: number, atMs: number): Buffer {
  return envelope(0, encodeHeartbeatResponse(scannedSeq, atMs));
}

/** Flags 0 (uncompressed), then the message's length, 4 bytes big-endian. */
function envelopeHeader(out: Buffer, at: number, length: number): void {
  out[at] = 0;
  out.writeUInt32BE(length, at + 1);
}
