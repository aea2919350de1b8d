// A wire-path request's body: read whole from the HTTP/2 stream as Buffers,
// bounded by readMaxBytes, and turned into the request message. The common case
// (one complete, uncompressed envelope) is decoded directly; anything else goes
// through Connect's own envelope transforms and size checks, so that an odd or
// oversize body gets exactly the error Connect gives it.
import type { ServerHttp2Stream } from "node:http2";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import {
  createAsyncIterable,
  createMethodSerializationLookup,
  pipe,
  readAllBytes,
  transformDecompressEnvelope,
  transformParseEnvelope,
  transformSplitEnvelope,
} from "@connectrpc/connect/protocol";
import type { DescMethod } from "@bufbuild/protobuf";
import type { WireProtocol } from "./wire-protocols.js";
import { protoKeyInBinary, protoKeyRefused } from "./proto-keys.js";
import { decodeAppendEventsRequest } from "./append-request-decoder.js";

/**
 * Requests read by hand where protobuf-es's decoding costs the hot path most; each gives up
 * (undefined) on anything but the plain form, and protobuf-es decodes that.
 */
const directDecoders: Record<string, ((message: Buffer) => unknown) | undefined> = {
  "eventide.v1.AppendEventsRequest": decodeAppendEventsRequest,
};

/** What a body read yields: the bytes, or the error Connect would have answered (it read no further either). */
export type Body = { bytes: Buffer; error?: undefined } | { error: ConnectError; bytes?: undefined };

/**
 * Reads the body to its end; stops early at the point where Connect would refuse it
 * for its size: an envelope declaring more than readMaxBytes, a Connect unary body
 * whose content-length or length passes it.
 */
export function readBody(stream: ServerHttp2Stream, protocol: WireProtocol, readMaxBytes: number, contentLength: string | undefined): Promise<Body> {
  return new Promise((resolve) => new BodyRead(stream, protocol, readMaxBytes, contentLength, resolve));
}

/** One body being read: its state and its two stream listeners, bound once. */
class BodyRead {
  private readonly chunks: Buffer[] = [];
  private total = 0;
  private settled = false;
  private readonly onData = this.data.bind(this);
  private readonly onEnd = this.end.bind(this);

  constructor(
    private readonly stream: ServerHttp2Stream,
    private readonly protocol: WireProtocol,
    private readonly readMaxBytes: number,
    private readonly contentLength: string | undefined,
    private readonly resolve: (body: Body | Promise<Body>) => void,
  ) {
    if (!protocol.enveloped && contentLength !== undefined && Number(contentLength) > readMaxBytes) {
      this.refused();
      return;
    }
    // An empty body (END_STREAM on the request's HEADERS) may have ended before the handler asks
    // for it, which it does after the interceptors: 'end' was emitted then, and will not be again.
    if (stream.readableEnded) {
      this.end();
      return;
    }
    stream.on("data", this.onData);
    stream.once("end", this.onEnd);
    // A client that reset its stream: its call is over anyway (the caller sees the stream closed).
    stream.once("close", this.onEnd);
  }

  private settle(body: Body | Promise<Body>): void {
    if (this.settled) return;
    this.settled = true;
    this.stream.off("data", this.onData);
    this.stream.off("end", this.onEnd);
    this.stream.off("close", this.onEnd);
    this.resolve(body);
  }

  private refused(): void {
    this.settle(connectSizeError(this.chunks, this.protocol, this.readMaxBytes, this.contentLength));
  }

  private data(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.total += chunk.length;
    if (this.protocol.enveloped) {
      // Connect's envelope decoder refuses an envelope whose declared length passes readMaxBytes as soon as it sees it.
      if (this.total >= 5 && declaredLength(this.chunks) > this.readMaxBytes) this.refused();
      // A second envelope (an error anyway for these methods) is not worth holding beyond one more readMaxBytes.
      else if (this.total > 2 * (this.readMaxBytes + 5)) this.refused();
    } else if (this.total > this.readMaxBytes) this.refused();
  }

  private end(): void {
    const { chunks, total } = this;
    this.settle({ bytes: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total) });
  }
}

function declaredLength(chunks: Buffer[]): number {
  const head = chunks[0].length >= 5 ? chunks[0] : Buffer.concat(chunks).subarray(0, 5);
  return head.readUInt32BE(1);
}

/** The error Connect's readers throw for what was read so far. */
async function connectSizeError(chunks: Buffer[], protocol: WireProtocol, readMaxBytes: number, contentLength: string | undefined): Promise<Body> {
  try {
    if (protocol.enveloped) {
      for await (const _ of pipe(createAsyncIterable(chunks), transformSplitEnvelope(readMaxBytes))) void _;
    } else await readAllBytes(createAsyncIterable(chunks), readMaxBytes, contentLength ?? null);
  } catch (err) {
    return { error: ConnectError.from(err) };
  }
  return { error: new ConnectError("request too large") };
}

/** Decodes request messages of one method as Connect does (its patched binary serialization, with its readMaxBytes check). */
export class RequestDecoder<I extends DescMessage> {
  private readonly serialization;
  private readonly direct: ((message: Buffer) => unknown) | undefined;

  constructor(
    private readonly method: DescMethod & { input: I },
    private readonly readMaxBytes: number,
    /** Whether a "__proto__" map key is looked for (methods whose request holds maps: see proto-keys.ts). */
    private readonly checkProtoKeys: boolean,
  ) {
    this.serialization = createMethodSerializationLookup(method, undefined, undefined, { readMaxBytes, writeMaxBytes: 0xffffffff });
    this.direct = directDecoders[method.input.typeName];
  }

  private parse(bytes: Uint8Array): MessageShape<I> {
    return this.serialization.getI(true).parse(bytes) as MessageShape<I>;
  }

  /** One message: read directly when it can be (a direct read gives up on any "__proto__" key), else checked and parsed. */
  private one(message: Buffer): Iterator<MessageShape<I>> {
    const direct = this.direct?.(message) as MessageShape<I> | undefined;
    if (direct) return [direct][Symbol.iterator]();
    this.refuseProtoKeys([message]);
    return [this.parse(message)][Symbol.iterator]();
  }

  /** The body's one uncompressed envelope, or undefined when it is anything else. */
  private static single(body: Buffer): Buffer | undefined {
    if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) return undefined;
    return body.subarray(5);
  }

  /**
   * The request messages of a body, decoded as they are pulled (as Connect pulls them:
   * a unary call decodes its first, runs, then looks for a second). The "__proto__"
   * check comes first, as in refuseProtoKeys, which reads the whole body before Connect does.
   */
  messages(body: Buffer, protocol: WireProtocol): AsyncIterator<MessageShape<I>> | Iterator<MessageShape<I>> {
    if (!protocol.enveloped) return this.one(body);
    const one = RequestDecoder.single(body);
    if (one && one.length <= this.readMaxBytes) return this.one(one);
    if (this.checkProtoKeys) this.refuseProtoKeys(completeEnvelopes(body));
    return pipe(
      createAsyncIterable([body]),
      transformSplitEnvelope(this.readMaxBytes),
      transformDecompressEnvelope(null, this.readMaxBytes),
      transformParseEnvelope<MessageShape<I>>(this.serialization.getI(true) as never, protocol.endFlag as number),
    )[Symbol.asyncIterator]();
  }

  private refuseProtoKeys(messages: Uint8Array[]): void {
    if (!this.checkProtoKeys) return;
    for (const message of messages) {
      const path = protoKeyInBinary(this.method.input, message);
      if (path !== undefined) throw protoKeyRefused(path);
    }
  }
}

/** The uncompressed complete envelopes of a body (what refuseProtoKeys looks into). */
function completeEnvelopes(body: Buffer): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    if (at + 5 + length > body.length) return [];
    if ((body[at] & 1) === 0) out.push(body.subarray(at + 5, at + 5 + length));
    at += 5 + length;
  }
  return out;
}
