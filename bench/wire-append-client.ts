// The raw node:http2 append generator: AppendEvents requests encoded once
// (one gRPC frame each) and sent over `WireSessions`, N connections × M
// concurrent streams in a closed loop (each stream sends its next call as
// its previous one returns), or by the caller on a schedule (open loop).
// Of each answer it reads only first_seq and last_seq. Its requests carry no
// client event ids: the server assigns them, so the same bytes sent again
// append new events.
import { create, type JsonObject, toBinary } from "@bufbuild/protobuf";
import { AppendEventsRequestSchema } from "../gen/eventide/v1/event_service_pb.js";
import { nowMs } from "./clock.js";
import { grpcFrame, varintField } from "./grpc-wire.js";
import { benchEventType } from "./payloads.js";
import { grpcHeaders, type WireSessions, wireUnary } from "./wire-sessions.js";

export const appendPath = "/eventide.v1.EventService/AppendEvents";
const appendHeaders = grpcHeaders(appendPath);

/** The request frame of an AppendEvents of `batchSize` bench events with `payload` to `threadId`. */
export function appendFrame(threadId: string, batchSize: number, payload: JsonObject): Buffer {
  const events = Array.from({ length: batchSize }, () => ({ type: benchEventType, payload }));
  return grpcFrame(toBinary(AppendEventsRequestSchema, create(AppendEventsRequestSchema, { threadId, events })));
}

/** A number no real send time equals: its 8 bytes mark where the payload's double sits in the encoded request. */
const marker = 1.2345678901234567e-300;

/**
 * The frame of a one-event append to `threadId` whose payload is
 * `{"sentAt": <ms>}`, encoded once: each call copies it and writes its send
 * time (the bench's monotonic clock) over the double in place.
 */
export function stampedAppendFrame(threadId: string): (sentAt: number) => Buffer {
  const template = appendFrame(threadId, 1, { sentAt: marker });
  const markerBytes = Buffer.alloc(8);
  markerBytes.writeDoubleLE(marker);
  const at = template.indexOf(markerBytes);
  if (at < 0) throw new Error("the send-time marker is not in the encoded request");
  return (sentAt) => {
    const frame = Buffer.from(template);
    frame.writeDoubleLE(sentAt, at);
    return frame;
  };
}

/** One AppendEvents; resolves with the seqs it got. */
export async function wireAppend(sessions: WireSessions, connection: number, frame: Buffer): Promise<[first: number, last: number]> {
  const response = await wireUnary(sessions.session(connection), appendHeaders, frame);
  return [varintField(response, 0, response.length, 1), varintField(response, 0, response.length, 2)];
}

export interface ClosedLoopParams {
  sessions: WireSessions;
  /** Concurrent streams per connection. */
  streams: number;
  /** Calls each connection makes (its streams share them), as h2load's `-n` per process. */
  callsPerConnection: number;
  /** The request of a call on connection `connection` (e.g. to that connection's thread). */
  frame(connection: number): Buffer;
  /** Each acknowledged call's seqs. */
  acked?(connection: number, first: number, last: number): void;
}

export interface LoadRun {
  /** Round trip of each acknowledged call. */
  latenciesMs: number[];
  failed: number;
  errors: string[];
  seconds: number;
}

/** `callsPerConnection` appends on each connection, `streams` in flight on each, each stream calling again as soon as its call returns. */
export async function closedLoop(p: ClosedLoopParams): Promise<LoadRun> {
  const run: LoadRun = { latenciesMs: [], failed: 0, errors: [], seconds: 0 };
  const issued = new Array<number>(p.sessions.count).fill(0);
  const started = nowMs();
  await Promise.all(
    Array.from({ length: p.sessions.count * p.streams }, async (_, worker) => {
      const connection = worker % p.sessions.count;
      while (issued[connection] < p.callsPerConnection) {
        issued[connection]++;
        const sent = nowMs();
        try {
          const [first, last] = await wireAppend(p.sessions, connection, p.frame(connection));
          run.latenciesMs.push(nowMs() - sent);
          p.acked?.(connection, first, last);
        } catch (err) {
          if (run.failed++ < 3) run.errors.push(String(err));
        }
      }
    }),
  );
  run.seconds = (nowMs() - started) / 1000;
  return run;
}
