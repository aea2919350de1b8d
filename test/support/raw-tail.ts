// A gRPC TailEvents call on a raw node:http2 session, for what client
// libraries hide: a client that stops reading (its HTTP/2 window fills), or
// one that resets its stream in the middle of the server's writes.
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type TailEventsRequest, TailEventsRequestSchema, type TailEventsResponse, TailEventsResponseSchema } from "../../gen/eventide/v1/event_service_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";

export interface RawTail {
  /** Every response so far, decoded. */
  responses: TailEventsResponse[];
  /** The seqs of every event so far (from `event` and `events` responses). */
  seqs(): number[];
  /** Resolves when the call ends: its grpc-status (or undefined when the stream closed without one). */
  ended: Promise<string | undefined>;
  stream: http2.ClientHttp2Stream;
}

/** Opens TailEvents over gRPC on `session`. */
export function rawTail(session: http2.ClientHttp2Session, req: MessageInitShape<typeof TailEventsRequestSchema>): RawTail {
  const body = toBinary(TailEventsRequestSchema, create(TailEventsRequestSchema, req) as TailEventsRequest);
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  const stream = session.request({ ":method": "POST", ":path": "/eventide.v1.EventService/TailEvents", "content-type": "application/grpc", te: "trailers" });
  const responses: TailEventsResponse[] = [];
  let pending: Buffer = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (pending.length < 5 + length) break;
      responses.push(fromBinary(TailEventsResponseSchema, pending.subarray(5, 5 + length)));
      pending = pending.subarray(5 + length);
    }
  });
  let status: string | undefined;
  stream.on("response", (h) => (status = (h["grpc-status"] as string | undefined) ?? status));
  stream.on("trailers", (h) => (status = h["grpc-status"] as string | undefined));
  stream.on("error", () => {});
  const ended = new Promise<string | undefined>((resolve) => stream.on("close", () => resolve(status)));
  stream.end(frame);
  return {
    responses,
    stream,
    ended,
    seqs() {
      const out: number[] = [];
      for (const r of responses) {
        if (r.item.case === "event") out.push(Number(r.item.value.seq));
        else if (r.item.case === "events") for (const e of r.item.value.events) out.push(Number(e.seq));
      }
      return out;
    },
  };
}
