// The binary protocols the wire path speaks, and how each answers on an HTTP/2
// stream: the same status, headers, envelopes, trailers and error formats as
// Connect's handlers (whose own serializers are used for errors, trailers and
// end-stream messages, so the bytes match).
import type { ServerHttp2Stream } from "node:http2";
import type { JsonWriteOptions } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, createEndStreamSerialization, endStreamFlag, errorToJsonBytes, parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { grpcStatusOk, parseTimeout as parseGrpcTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import { httpDate, ResponseHeaders } from "./wire-headers.js";

export type WireKind = "grpc" | "grpc-web" | "connect-unary" | "connect-stream";

export interface WireProtocol {
  kind: WireKind;
  /** The handler context's protocolName, as Connect names it. */
  name: "grpc" | "grpc-web" | "connect";
  /** Bodies are gRPC-style envelopes (all but Connect unary). */
  enveloped: boolean;
  /** The flag of an envelope that ends the stream (gRPC-Web trailers, Connect end-stream), skipped in a request. */
  endFlag: number | undefined;
  responseContentType: string;
  /** The request fields naming the request's compression and the compressions the client takes. */
  encodingHeader: string;
  acceptEncodingHeader: string;
  /** The response field naming the response's compression (Connect unary sets it only on a compressed body). */
  responseEncodingHeader: string;
  parseTimeout(headerValue: string | null, maxTimeoutMs: number): { timeoutMs?: number; error?: ConnectError };
}

const grpc: WireProtocol = {
  kind: "grpc",
  name: "grpc",
  enveloped: true,
  endFlag: undefined,
  responseContentType: "application/grpc+proto",
  encodingHeader: "grpc-encoding",
  acceptEncodingHeader: "grpc-accept-encoding",
  responseEncodingHeader: "grpc-encoding",
  parseTimeout: (v, max) => parseGrpcTimeout(v, max),
};

const grpcWeb: WireProtocol = { ...grpc, kind: "grpc-web", name: "grpc-web", endFlag: trailerFlag, responseContentType: "application/grpc-web+proto" };

const connectStream: WireProtocol = {
  kind: "connect-stream",
  name: "connect",
  enveloped: true,
  endFlag: endStreamFlag,
  responseContentType: "application/connect+proto",
  encodingHeader: "connect-content-encoding",
  acceptEncodingHeader: "connect-accept-encoding",
  responseEncodingHeader: "connect-content-encoding",
  parseTimeout: (v, max) => parseConnectTimeout(v, max),
};

const connectUnary: WireProtocol = {
  ...connectStream,
  kind: "connect-unary",
  enveloped: false,
  endFlag: undefined,
  responseContentType: "application/proto",
  encodingHeader: "content-encoding",
  acceptEncodingHeader: "accept-encoding",
  responseEncodingHeader: "content-encoding",
};

/** The binary content types (exactly as Connect's matchers take them, lower-cased) → protocol; unary or stream decides Connect's. */
const byContentType = new Map<string, WireProtocol[]>([
  ["application/grpc", [grpc]],
  ["application/grpc+proto", [grpc]],
  ["application/grpc-web", [grpcWeb]],
  ["application/grpc-web+proto", [grpcWeb]],
  ["application/proto", [connectUnary]],
  ["application/connect+proto", [connectStream]],
]);

/** The protocol of a request with this content type to a unary or server-streaming method, if the wire path speaks it. */
export function wireProtocolOf(contentType: string | undefined, streaming: boolean): WireProtocol | undefined {
  if (contentType === undefined) return undefined;
  const protocol = byContentType.get(contentType.toLowerCase())?.[0];
  if (!protocol) return undefined;
  // Connect's unary and streaming content types are not interchangeable: Connect refuses the mix (415) itself.
  if (protocol.kind === "connect-unary" && streaming) return undefined;
  if (protocol.kind === "connect-stream" && !streaming) return undefined;
  return protocol;
}

/** One gRPC-style envelope: flags, a 4-byte big-endian length, the data. */
export function envelope(flags: number, data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + data.length);
  out[0] = flags;
  out.writeUInt32BE(data.length, 1);
  out.set(data, 5);
  return out;
}

const compressedFlag = 0b00000001;

/**
 * Writes one call's answer in its protocol. Headers go out with the first
 * message (or with the end), after the handler had its chance to add some.
 */
export class WireReply {
  private headSent = false;

  constructor(
    private readonly stream: ServerHttp2Stream,
    readonly protocol: WireProtocol,
    /** The response compression Connect would have negotiated (used for messages of compressMinBytes or more). */
    private readonly compression: Compression | null,
    private readonly opts: { compressMinBytes: number; jsonOptions: Partial<JsonWriteOptions> },
  ) {}

  /** Whether the client can still be answered. */
  get open(): boolean {
    return !this.stream.destroyed && !this.stream.closed;
  }

  /** A message as its envelope, compressed like Connect would (only when it is at least compressMinBytes). */
  frame(message: Uint8Array): Buffer | Promise<Buffer> {
    if (!this.compression || message.byteLength < this.opts.compressMinBytes) return envelope(0, message);
    return this.compression.compress(message).then((data) => envelope(compressedFlag, data));
  }

  /** Whether a message of this size goes out uncompressed (the same envelope for every client of the protocol family). */
  sendsUncompressed(byteLength: number): boolean {
    return !this.compression || byteLength < this.opts.compressMinBytes;
  }

  /** Sends the headers (once): status 200 and the call's response header fields. */
  head(header: ResponseHeaders): void {
    if (this.headSent || !this.open) return;
    this.headSent = true;
    // gRPC's trailers go out when the stream ends (see end()).
    const waitForTrailers = this.protocol.kind === "grpc";
    this.stream.respond(header.toNode({ ":status": 200, date: httpDate() }), { waitForTrailers });
  }

  /** Writes framed bytes; false when the stream's buffer is full (wait for 'drain'). */
  write(frames: Buffer): boolean {
    if (!this.open) return true;
    return this.stream.write(frames);
  }

  /**
   * Ends a call of every protocol but Connect unary: its status in trailers, the trailer envelope or the
   * end-stream message; `last` (a unary call's answer) goes out in the same write.
   */
  async end(header: ResponseHeaders, trailer: ResponseHeaders, error: ConnectError | undefined, last?: Buffer): Promise<void> {
    if (!this.open) return;
    this.head(header);
    switch (this.protocol.kind) {
      case "grpc":
        if (error) setTrailerStatus(trailer.asHeaders(), error);
        // Listened for only now ('wantTrailers' comes after the last DATA frame): an open stream holds no listener for it.
        this.stream.once("wantTrailers", () => this.stream.sendTrailers(trailer.toNode()));
        this.stream.end(last);
        return;
      case "grpc-web":
        if (error) setTrailerStatus(trailer.asHeaders(), error);
        this.stream.end(withLast(last, await this.endFrame(trailerFlag, trailerSerialize(trailer.asHeaders()))));
        return;
      case "connect-stream": {
        const data = endStreams(this.opts.jsonOptions).serialize({ metadata: trailer.asHeaders(), error });
        this.stream.end(withLast(last, await this.endFrame(endStreamFlag, data)));
        return;
      }
      case "connect-unary":
        throw new Error("a Connect unary call ends with unary()");
    }
  }

  /** A Connect unary answer: the message, or the error as JSON with its HTTP status. */
  async unary(header: ResponseHeaders, trailer: ResponseHeaders, result: { message: Uint8Array } | { error: ConnectError }): Promise<void> {
    if (!this.open) return;
    let status = 200;
    let body: Uint8Array;
    if ("error" in result) {
      status = codeToHttpStatus(result.error.code);
      header.set("content-type", "application/json");
      result.error.metadata.forEach((value, key) => header.set(key, value));
      body = errorToJsonBytes(result.error, this.opts.jsonOptions);
    } else body = result.message;
    if (this.compression && body.byteLength >= this.opts.compressMinBytes) {
      body = await this.compression.compress(body);
      header.set(this.protocol.responseEncodingHeader, this.compression.name);
    }
    // Connect carries a unary call's trailers as prefixed header fields.
    trailer.forEach((value, key) => header.set(`trailer-${key}`, value));
    header.set("content-length", String(body.byteLength));
    if (!this.open) return;
    this.headSent = true;
    this.stream.respond(header.toNode({ ":status": status, date: httpDate() }));
    this.stream.end(body);
  }

  /** The trailer envelope or end-stream message, compressed as Connect compresses every envelope. */
  private async endFrame(flags: number, data: Uint8Array): Promise<Buffer> {
    if (!this.compression || data.byteLength < this.opts.compressMinBytes) return envelope(flags, data);
    return envelope(flags | compressedFlag, await this.compression.compress(data));
  }
}

function withLast(last: Buffer | undefined, end: Buffer): Buffer {
  return last ? Buffer.concat([last, end]) : end;
}

/** The header fields a call starts with, as Connect's handlers start them. */
export function initialHeader(protocol: WireProtocol, compression: Compression | null): ResponseHeaders {
  const header = new ResponseHeaders({ "content-type": protocol.responseContentType });
  if (compression && protocol.kind !== "connect-unary") header.set(protocol.responseEncodingHeader, compression.name);
  return header;
}

/** The trailer fields a call starts with: gRPC's OK status (an error replaces it). */
export function initialTrailer(protocol: WireProtocol): ResponseHeaders {
  return protocol.kind === "grpc" || protocol.kind === "grpc-web" ? new ResponseHeaders({ "grpc-status": grpcStatusOk }) : new ResponseHeaders();
}

/** A thrown value as the error a call answers: Connect answers anything else INTERNAL. */
export function answerError(err: unknown): ConnectError {
  return err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

const endStreamSerializations = new WeakMap<object, ReturnType<typeof createEndStreamSerialization>>();

function endStreams(jsonOptions: Partial<JsonWriteOptions>) {
  let s = endStreamSerializations.get(jsonOptions);
  if (!s) endStreamSerializations.set(jsonOptions, (s = createEndStreamSerialization(jsonOptions)));
  return s;
}
