// Per-RPC observation: one log line and the RPC metrics per call, when a unary
// call returns or a server stream ends. It is the outermost interceptor, so it
// sees every call's final code (auth refusals too) and, once the inner ones
// ran, the caller the auth interceptor set.
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "pino";
import { AgentService } from "../../gen/eventide/v1/agent_service_pb.js";
import { type AppendEventsRequest, EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { type SubmitTurnRequest, TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { anonymousCaller, callerKey } from "../auth.js";
import { newId } from "../domain/ids.js";
import { liveWriterKey } from "../live/live-writer.js";
import type { Metrics } from "../observability/metrics.js";

export const requestIdHeader = "x-request-id";
/** A client's request id is kept when it is short and plain (it goes into logs verbatim). */
const saneRequestId = /^[\w.:@/+=-]{1,128}$/;
/** Metadata values may be 1 KiB, or anything in a request validation refuses. */
const maxLoggedCorrelationId = 128;

type AnyRequest = UnaryRequest | StreamRequest;

interface Call {
  req: AnyRequest;
  requestId: string;
  startedAt: number;
}

export function observeRpcs(log: Logger, metrics: Metrics): Interceptor {
  const finished = (call: Call, error: ConnectError | undefined, messages?: number) => {
    const code = error?.code;
    const seconds = (performance.now() - call.startedAt) / 1000;
    metrics.rpcFinished(call.req.method, code, seconds);
    const level = code === Code.Internal || code === Code.Unknown || code === Code.DataLoss ? "error" : "info";
    if (!log.isLevelEnabled(level)) return;
    const caller = call.req.contextValues.get(callerKey);
    // A refused call never got a caller: the anonymous default would be a lie.
    const refused = caller === anonymousCaller && (code === Code.Unauthenticated || code === Code.PermissionDenied);
    log[level](
      {
        method: fullName(call.req.method),
        code: code === undefined ? "ok" : codeToString(code),
        duration_ms: Math.round(seconds * 100_000) / 100,
        request_id: call.requestId,
        tenant: refused ? undefined : caller.tenantId,
        key: refused ? undefined : caller.keyName,
        correlation_id: correlationIdOf(call.req),
        messages,
        error: error?.rawMessage,
      },
      "rpc",
    );
  };

  return (next) => async (req) => {
    const incoming = req.header.get(requestIdHeader);
    const call: Call = { req, requestId: incoming && saneRequestId.test(incoming) ? incoming : newId(), startedAt: performance.now() };
    let res;
    try {
      res = await next(req);
    } catch (err) {
      const error = ConnectError.from(err);
      error.metadata.set(requestIdHeader, call.requestId);
      finished(call, error);
      throw error;
    }
    res.header.set(requestIdHeader, call.requestId);
    if (!res.stream) {
      finished(call, undefined);
      return res;
    }
    return { ...res, message: new ObservedStream(res.message, call, openStreamGauge(metrics, req.method), finished) };
  };
}

type Finished = (call: Call, error: ConnectError | undefined, messages: number) => void;

const done = { done: true, value: undefined } as const;

/**
 * Ends with the stream: its code is the error it threw, or a cancel when the client left early.
 * The call's end (the client left, its deadline passed) also ends the stream: Connect's clients,
 * the in-process one the HTTP API uses included, drop a cancelled call without asking its stream
 * for anything more, and a stream stopped at a message nobody reads would keep its tail, its key's
 * slot and this log line for good.
 *
 * A plain iterator rather than an async generator: an idle followed tail waits at a message for
 * hours, and this layer then holds one pending promise, not a suspended generator and the closures
 * around it (10,000 idle tails hold it 10,000 times). It behaves as the generator
 * `try { for await (m of messages) { sent++; yield m } } catch … finally { finished(…) }` did.
 */
class ObservedStream<T> implements AsyncIterableIterator<T> {
  private inner: AsyncIterator<T> | undefined;
  private sent = 0;
  /** Returned before its first pull: it never opens. */
  private closed = false;
  /** Its end was reported. */
  private ended = false;
  /** Set when the call's deadline ended it: the stream then ends DEADLINE_EXCEEDED, not OK. */
  private deadline: ConnectError | undefined;

  constructor(
    private readonly messages: AsyncIterable<T>,
    private readonly call: Call,
    private readonly open: { inc(): void; dec(): void } | undefined,
    private readonly finished: Finished,
  ) {
    const { signal } = call.req;
    if (signal.aborted) this.stop();
    else signal.addEventListener("abort", this.stop, { once: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.ended || this.closed) return this.deadline ? Promise.reject(this.deadline) : Promise.resolve(done);
    if (!this.inner) {
      this.inner = this.messages[Symbol.asyncIterator]();
      this.open?.inc();
    }
    return this.inner.next().then(this.passed, this.failed);
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    // Returned before its first pull: nothing ran, nothing to report (stop() reports it, if the call ends so).
    if (!this.inner || this.ended) {
      this.closed = true;
      return Promise.resolve({ done: true, value: value as T });
    }
    const returned = this.inner.return ? this.inner.return(value) : Promise.resolve({ done: true as const, value: value as T });
    return returned.then((r) => {
      this.finish(undefined, false);
      return r;
    }, this.failed);
  }

  throw(err?: unknown): Promise<IteratorResult<T>> {
    if (!this.inner || this.ended) {
      this.closed = true;
      return Promise.reject(err);
    }
    // Thrown in at the message it waits at: the inner stream is closed, and the stream ends with this error.
    const error = ConnectError.from(err);
    const returned = this.inner.return ? this.inner.return() : Promise.resolve(done);
    return returned.then(() => {
      this.finish(error, false);
      throw error;
    }, this.failed);
  }

  private readonly passed = (r: IteratorResult<T>): IteratorResult<T> => {
    if (!r.done) {
      this.sent++;
      return r;
    }
    this.finish(undefined, true);
    if (this.deadline) throw this.deadline;
    return r;
  };

  private readonly failed = (err: unknown): never => {
    const error = ConnectError.from(err);
    this.finish(error, false);
    throw error;
  };

  /** The call ended (the client left, its deadline passed): the stream ends wherever it waits. */
  private readonly stop = () => {
    const { signal } = this.call.req;
    if (signal.reason instanceof ConnectError && signal.reason.code === Code.DeadlineExceeded) this.deadline = signal.reason;
    if (this.ended) return;
    // One that never started has no end of its own to report how it ended.
    if (!this.inner) {
      this.ended = this.closed = true;
      signal.removeEventListener("abort", this.stop);
      this.finished(this.call, canceled(signal), 0);
      return;
    }
    this.return().catch(() => {});
  };

  private finish(error: ConnectError | undefined, completed: boolean): void {
    if (this.ended) return;
    this.ended = true;
    const { signal } = this.call.req;
    signal.removeEventListener("abort", this.stop);
    this.open?.dec();
    // A handler also ends normally when its signal aborts (the client cancelled, a deadline passed).
    if (!error && (!completed || signal.aborted)) error = canceled(signal);
    // With the responses a live writer put on the wire past this stream.
    this.finished(this.call, error, this.sent + (this.call.req.contextValues.get(liveWriterKey)?.written ?? 0));
  }
}

function canceled(signal: AbortSignal): ConnectError {
  return ConnectError.from(signal.reason ?? "the client left", Code.Canceled);
}

function openStreamGauge(metrics: Metrics, method: DescMethod) {
  if (method === EventService.method.tailEvents) return metrics.activeTails;
  if (method === AgentService.method.receiveTurns) return metrics.activeAgentFeeds;
  return undefined;
}

/** The correlation id the request's events or turn carry, if any. */
function correlationIdOf(req: AnyRequest): string | undefined {
  if (req.stream) return undefined;
  let id: string | undefined;
  if (req.method === EventService.method.appendEvents) {
    for (const event of (req.message as AppendEventsRequest).events) {
      id = event.metadata.correlation_id;
      if (id) break;
    }
  } else if (req.method === TurnService.method.submitTurn) {
    id = (req.message as SubmitTurnRequest).metadata.correlation_id;
  }
  return id ? id.slice(0, maxLoggedCorrelationId) : undefined;
}

const fullNames = new WeakMap<DescMethod, string>();

/** `eventide.v1.EventService/AppendEvents`, built once per method. */
function fullName(method: DescMethod): string {
  let name = fullNames.get(method);
  if (!name) fullNames.set(method, (name = `${method.parent.typeName}/${method.name}`));
  return name;
}
