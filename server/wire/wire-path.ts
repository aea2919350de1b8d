// The wire path: AppendEvents and SubmitTurn (unary) and TailEvents (server
// stream) over the binary protocols (gRPC, gRPC-Web, Connect with protobuf), served straight on
// HTTP/2 streams. It builds the request objects Connect's interceptors see and
// runs the same interceptors around the same service implementation, so auth,
// limits, validation, errors, logs and metrics are the same code; what it skips
// is Connect's per-call plumbing (Fetch Headers, envelope async iterables, an
// AbortController chain), which cost more than the append itself. Everything
// else (JSON, compressed requests, GET, other RPCs, HTTP/1.1) stays with Connect.
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { constants as h2 } from "node:http2";
import { create, type DescMessage, type DescMethod, type DescService, isMessage, type JsonWriteOptions, type Message, type MessageShape, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { type Compression, compressionNegotiate } from "@connectrpc/connect/protocol";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { liveWriterKey } from "../live/live-writer.js";
import { RequestDecoder, readBody } from "./request-body.js";
import { StreamLiveWriter } from "./stream-live-writer.js";
import { RequestHeaders, type ResponseHeaders } from "./wire-headers.js";
import { answerError, initialHeader, initialTrailer, type WireProtocol, WireReply, wireProtocolOf } from "./wire-protocols.js";

export interface WirePathDeps {
  /** The EventService implementation Connect's router serves too. */
  service: Partial<ServiceImpl<typeof EventService>>;
  /** The TurnService implementation Connect's router serves too: SubmitTurn starts every turn, so it is on the path to its first event. */
  turns: Partial<ServiceImpl<typeof TurnService>>;
  /** The router's interceptors, outermost first. */
  interceptors: Interceptor[];
  /** The context values the Node adapter would build for the request. */
  contextValues: (req: { rawHeaders: string[] }) => ContextValues;
  acceptCompression: Compression[];
  readMaxBytes: number;
  compressMinBytes: number;
  jsonOptions: Partial<JsonWriteOptions>;
  /** With CORS origins configured, browser requests (those with an Origin) go to Connect, behind the CORS handler. */
  corsOrigins: string[];
  scheme: "http" | "https";
}

/** Serves an HTTP/2 stream and says so, or leaves it (false) to Connect. */
export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[]) => boolean;

interface Route {
  method: DescMethod;
  streaming: boolean;
  serve(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], protocol: WireProtocol): Promise<void>;
}

/** Connect passes no timeout bound unless told one. */
const maxTimeoutMs = Number.MAX_SAFE_INTEGER;

export function wirePath(deps: WirePathDeps): StreamHandler {
  const { appendEvents, tailEvents } = deps.service;
  const { submitTurn } = deps.turns;
  if (!appendEvents || !tailEvents || !submitTurn) throw new Error("the wire path needs EventService's appendEvents and tailEvents and TurnService's submitTurn");
  // Both unary requests hold maps (payloads, inputs, metadata): their "__proto__" keys are looked for.
  const routes = new Map<string, Route>([
    [`/${EventService.typeName}/AppendEvents`, unaryRoute(EventService.method.appendEvents, appendEvents as unknown as UnaryFn, true, deps)],
    [`/${EventService.typeName}/TailEvents`, streamRoute(EventService.method.tailEvents, tailEvents as unknown as StreamFn, deps)],
    [`/${TurnService.typeName}/SubmitTurn`, unaryRoute(TurnService.method.submitTurn, submitTurn as unknown as UnaryFn, true, deps)],
  ]);
  return (stream, headers, rawHeaders) => {
    if (headers[":method"] !== "POST") return false;
    const route = routes.get(headers[":path"] ?? "");
    if (!route) return false;
    const protocol = wireProtocolOf(headers["content-type"], route.streaming);
    if (!protocol || compressed(headers) || headers.expect !== undefined) return false;
    if (deps.corsOrigins.length > 0 && headers.origin !== undefined) return false;
    route.serve(stream, headers, rawHeaders, protocol).catch((err: unknown) => stream.destroy(err as Error));
    return true;
  };
}

/** A request compressed in any way goes to Connect (which decompresses it, or refuses an encoding it does not take). */
function compressed(headers: IncomingHttpHeaders): boolean {
  for (const name of ["grpc-encoding", "connect-content-encoding", "content-encoding"]) {
    const value = headers[name];
    if (value !== undefined && value !== "identity") return true;
  }
  return false;
}

type UnaryFn = (req: Message, ctx: HandlerContext) => Promise<unknown>;
type StreamFn = (req: Message, ctx: HandlerContext) => AsyncIterable<unknown>;

/** One call's state: its signal (client reset, deadline), context and response fields, as Connect's handlers keep them. */
class WireCall {
  private readonly controller = new AbortController();
  private deadline: NodeJS.Timeout | undefined;
  private done = false;
  readonly timeout: { timeoutMs?: number; error?: ConnectError };
  readonly header: ResponseHeaders;
  readonly trailer: ResponseHeaders;
  readonly reply: WireReply;
  readonly context: HandlerContext;
  readonly request: { service: DescService; method: DescMethod; requestMethod: string; url: string; signal: AbortSignal; header: Headers; contextValues: ContextValues };

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], protocol: WireProtocol, method: DescMethod, deps: WirePathDeps) {
    const requestHeader = RequestHeaders.view(headers);
    this.timeout = protocol.parseTimeout(requestHeader.get(protocol.name === "connect" ? "connect-timeout-ms" : "grpc-timeout"), maxTimeoutMs);
    const compression = compressionNegotiate(
      deps.acceptCompression,
      requestHeader.get(protocol.encodingHeader),
      requestHeader.get(protocol.acceptEncodingHeader),
      protocol.acceptEncodingHeader,
    ).response;
    this.header = initialHeader(protocol, compression);
    this.trailer = initialTrailer(protocol);
    this.reply = new WireReply(stream, protocol, compression, deps);
    const { signal } = this.controller;
    const ms = this.timeout.timeoutMs;
    if (ms !== undefined) {
      if (ms <= 0) this.expire();
      else this.deadline = setTimeout(() => this.expire(), ms);
    }
    const expiresAt = ms === undefined ? undefined : Date.now() + ms;
    // The client went away (RST_STREAM): the handler's signal aborts, with Connect's reason for the reset code.
    // ('close' comes once: `on` spares the once-wrapper an idle tail would hold.)
    stream.on("close", () => {
      clearTimeout(this.deadline);
      if (!this.done && !signal.aborted) this.controller.abort(resetReason(stream.rstCode));
    });
    const values = deps.contextValues({ rawHeaders });
    // A tail's live events may skip its generator and go onto the stream as bytes framed once for the thread.
    if (method.methodKind === "server_streaming") values.set(liveWriterKey, new StreamLiveWriter(stream, this.reply, this.header));
    const url = `${deps.scheme}://${headers[":authority"] ?? headers.host ?? ""}${headers[":path"]}`;
    this.request = { service: method.parent, method, requestMethod: "POST", url, signal, header: requestHeader, contextValues: values };
    this.context = {
      service: method.parent,
      method,
      requestMethod: "POST",
      protocolName: protocol.name,
      url,
      signal,
      timeoutMs: () => (expiresAt === undefined ? undefined : expiresAt - Date.now()),
      requestHeader,
      responseHeader: this.header.asHeaders(),
      responseTrailer: this.trailer.asHeaders(),
      values,
    } as HandlerContext;
  }

  private expire(): void {
    this.controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
  }

  /** The handler's context for the request the interceptors passed on. */
  contextFor(req: UnaryRequest | StreamRequest): HandlerContext {
    return { ...this.context, service: req.service, requestHeader: req.header, signal: req.signal, values: req.contextValues };
  }

  /** What the interceptors answered becomes the call's fields (they may have replaced the objects). */
  adopt(res: UnaryResponse | StreamResponse): void {
    copyFields(res.header, this.header);
    copyFields(res.trailer, this.trailer);
  }

  /** The call is over: its signal no longer follows the stream (a stream's handler saw it abort, as Connect aborts it). */
  finish(abortSignal: boolean): void {
    this.done = true;
    clearTimeout(this.deadline);
    if (abortSignal && !this.controller.signal.aborted) this.controller.abort(callEnded);
  }
}

/** The abort reason at a call's normal end: made once (an abort without a reason builds a DOMException each time). */
const callEnded = new ConnectError("the call ended", Code.Canceled);

/** The call's request messages, read and decoded as they are pulled (a deadline already past fails the first pull). */
async function* requestMessages<I extends DescMessage>(
  call: WireCall,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  protocol: WireProtocol,
  decoder: RequestDecoder<I>,
  deps: WirePathDeps,
): AsyncGenerator<MessageShape<I>> {
  if (call.timeout.error) throw call.timeout.error;
  const body = await readBody(stream, protocol, deps.readMaxBytes, headers["content-length"]);
  if (body.error) throw body.error;
  const messages = decoder.messages(body.bytes, protocol);
  for (let r = await messages.next(); !r.done; r = await messages.next()) yield r.value;
}

function unaryRoute(method: DescMethod, impl: UnaryFn, checkProtoKeys: boolean, deps: WirePathDeps): Route {
  const decoder = new RequestDecoder(method, deps.readMaxBytes, checkProtoKeys);
  const invoke = async (call: WireCall, req: UnaryRequest): Promise<UnaryResponse> => {
    const message = normalize(method.output, await impl(req.message, call.contextFor(req)));
    return { stream: false, service: req.service, method: req.method, header: call.header.asHeaders(), trailer: call.trailer.asHeaders(), message } as UnaryResponse;
  };
  return {
    method,
    streaming: false,
    async serve(stream, headers, rawHeaders, protocol) {
      const call = new WireCall(stream, headers, rawHeaders, protocol, method, deps);
      const { reply } = call;
      let answer: Uint8Array;
      try {
        const messages = requestMessages(call, stream, headers, protocol, decoder, deps);
        const first = await messages.next();
        if (first.done) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
        // Composed per call, as Connect does: the innermost function is this call's.
        const next = chain((req: UnaryRequest) => invoke(call, req), deps.interceptors);
        const res = await next({ ...call.request, stream: false, message: first.value } as unknown as UnaryRequest);
        call.adopt(res);
        if (!(await messages.next()).done) throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
        answer = toBinary(method.output, res.message as never);
      } catch (err) {
        call.finish(false);
        const error = answerError(err);
        if (protocol.kind === "connect-unary") await reply.unary(call.header, call.trailer, { error });
        else await reply.end(call.header, call.trailer, error);
        return;
      }
      call.finish(false);
      if (protocol.kind === "connect-unary") return reply.unary(call.header, call.trailer, { message: answer });
      reply.head(call.header);
      return reply.end(call.header, call.trailer, undefined, await reply.frame(answer));
    },
  };
}

function streamRoute(method: DescMethod, impl: StreamFn, deps: WirePathDeps): Route {
  const decoder = new RequestDecoder(method, deps.readMaxBytes, false);
  const invoke = async (call: WireCall, req: StreamRequest): Promise<StreamResponse> => {
    const context = call.contextFor(req);
    const input = await single(req.message as AsyncIterable<Message>);
    return { stream: true, service: req.service, method: req.method, header: call.header.asHeaders(), trailer: call.trailer.asHeaders(), message: impl(input, context) } as StreamResponse;
  };
  /**
   * The stream's messages, from the interceptors around the handler: composed per call, as Connect
   * does, in a function of its own so that a stream waiting at a message (an idle tail, for hours)
   * does not keep the composed chain alive in serve's frame.
   */
  const open = async (call: WireCall, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, protocol: WireProtocol): Promise<AsyncIterator<unknown>> => {
    // Read as the handler pulls it, as Connect does: inside the interceptors, after auth.
    const input = requestMessages(call, stream, headers, protocol, decoder, deps);
    const next = chain((req: StreamRequest) => invoke(call, req), deps.interceptors);
    const res = await next({ ...call.request, stream: true, message: input } as unknown as StreamRequest);
    call.adopt(res);
    return res.message[Symbol.asyncIterator]();
  };
  return {
    method,
    streaming: true,
    async serve(stream, headers, rawHeaders, protocol) {
      const call = new WireCall(stream, headers, rawHeaders, protocol, method, deps);
      const { reply } = call;
      let error: ConnectError | undefined;
      let messages: AsyncIterator<unknown> | undefined;
      try {
        messages = await open(call, stream, headers, protocol);
        await pump(messages, stream, reply, call.header, method.output);
      } catch (err) {
        error = answerError(err);
      }
      // Ends the handler's generators if the pump left early (the client went away).
      await messages?.return?.(undefined).catch(() => {});
      call.finish(true);
      await reply.end(call.header, call.trailer, error);
    },
  };
}

/**
 * Writes a stream's messages as they come: each framed once (a live event's response is one
 * object for every tail of its thread, so its frame is too), those that come in the same turn
 * of the event loop in one write; while the client reads slower than they come, no more are
 * pulled (the tail then catches up from storage, as it does under Connect).
 */
async function pump(messages: AsyncIterator<unknown>, stream: ServerHttp2Stream, reply: WireReply, header: ResponseHeaders, schema: DescMessage): Promise<void> {
  let corked = false;
  const uncork = () => {
    corked = false;
    stream.uncork();
  };
  for (;;) {
    const r = await messages.next();
    if (r.done || !reply.open) return;
    const framed = framedMessage(reply, schema, r.value);
    const bytes = framed instanceof Promise ? await framed : framed;
    reply.head(header);
    if (!corked) {
      corked = true;
      stream.cork();
      setImmediate(uncork);
    }
    if (!reply.write(bytes)) await drained(stream);
  }
}

const frames = new WeakMap<object, Buffer>();

function framedMessage(reply: WireReply, schema: DescMessage, message: unknown): Buffer | Promise<Buffer> {
  const cached = frames.get(message as object);
  if (cached) return cached;
  const framed = reply.frame(toBinary(schema, normalize(schema, message)));
  if (!(framed instanceof Promise)) frames.set(message as object, framed);
  return framed;
}

function drained(stream: ServerHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

/** Connect's check that a server stream got exactly one request message. */
async function single<T>(messages: AsyncIterable<T>): Promise<T> {
  const it = messages[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new ConnectError("protocol error: missing input message for server-streaming method", Code.Unimplemented);
  const second = await it.next();
  if (!second.done) throw new ConnectError("protocol error: received extra input message for server-streaming method", Code.Unimplemented);
  return first.value;
}

/** Interceptors around a call, outermost first (as Connect applies them). */
function chain<T>(next: T, interceptors: Interceptor[]): T {
  return interceptors.reduceRight((n, i) => i(n as never) as T, next);
}

function normalize<S extends DescMessage>(schema: S, message: unknown): MessageShape<S> {
  return isMessage(message, schema) ? message : create(schema, message as never);
}

/** Replaces `to`'s fields with `from`'s unless they are the same object (Connect's copyHeaders). */
function copyFields(from: Headers, to: ResponseHeaders): void {
  if ((from as unknown) === to) return;
  for (const key of [...to.keys()]) to.delete(key);
  from.forEach((value, key) => to.set(key, value));
}

/** The abort reason Connect's Node adapter gives a handler whose client reset its HTTP/2 stream. */
function resetReason(rstCode: number | undefined): unknown {
  const named = (code: Code) => new ConnectError(`http/2 stream closed with error code ${h2Names[rstCode!]} (0x${rstCode!.toString(16)})`, code);
  switch (rstCode) {
    case h2.NGHTTP2_PROTOCOL_ERROR:
    case h2.NGHTTP2_INTERNAL_ERROR:
    case h2.NGHTTP2_FLOW_CONTROL_ERROR:
    case h2.NGHTTP2_SETTINGS_TIMEOUT:
    case h2.NGHTTP2_FRAME_SIZE_ERROR:
    case h2.NGHTTP2_COMPRESSION_ERROR:
    case h2.NGHTTP2_CONNECT_ERROR:
      return named(Code.Internal);
    case h2.NGHTTP2_REFUSED_STREAM:
      return named(Code.Unavailable);
    case h2.NGHTTP2_CANCEL:
      return named(Code.Canceled);
    case h2.NGHTTP2_ENHANCE_YOUR_CALM:
      return named(Code.ResourceExhausted);
    case h2.NGHTTP2_INADEQUATE_SECURITY:
    case h2.NGHTTP2_HTTP_1_1_REQUIRED:
      return named(Code.PermissionDenied);
    default:
      return undefined;
  }
}

const h2Names: Record<number, string> = {
  [h2.NGHTTP2_PROTOCOL_ERROR]: "PROTOCOL_ERROR",
  [h2.NGHTTP2_INTERNAL_ERROR]: "INTERNAL_ERROR",
  [h2.NGHTTP2_FLOW_CONTROL_ERROR]: "FLOW_CONTROL_ERROR",
  [h2.NGHTTP2_SETTINGS_TIMEOUT]: "SETTINGS_TIMEOUT",
  [h2.NGHTTP2_FRAME_SIZE_ERROR]: "FRAME_SIZE_ERROR",
  [h2.NGHTTP2_COMPRESSION_ERROR]: "COMPRESSION_ERROR",
  [h2.NGHTTP2_CONNECT_ERROR]: "CONNECT_ERROR",
  [h2.NGHTTP2_REFUSED_STREAM]: "REFUSED_STREAM",
  [h2.NGHTTP2_CANCEL]: "CANCEL",
  [h2.NGHTTP2_ENHANCE_YOUR_CALM]: "ENHANCE_YOUR_CALM",
  [h2.NGHTTP2_INADEQUATE_SECURITY]: "INADEQUATE_SECURITY",
  [h2.NGHTTP2_HTTP_1_1_REQUIRED]: "HTTP_1_1_REQUIRED",
};
