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
    return { ...res, message: observeStream(res.message, call, openStreamGauge(metrics, req.method), finished) };
  };
}

/**
 * Ends with the stream: its code is the error it threw, or a cancel when the client left early.
 * The call's end (the client left, its deadline passed) also ends the stream: Connect's clients,
 * the in-process one the HTTP API uses included, drop a cancelled call without asking its stream
 * for anything more, and a stream stopped at a message nobody reads would keep its tail, its key's
 * slot and this log line for good.
 */
function observeStream<T>(
  messages: AsyncIterable<T>,
  call: Call,
  open: { inc(): void; dec(): void } | undefined,
  finished: (call: Call, error: ConnectError | undefined, messages: number) => void,
): AsyncIterable<T> {
  const { signal } = call.req;
  let started = false;
  const stream = (async function* () {
    started = true;
    open?.inc();
    let sent = 0;
    let error: ConnectError | undefined;
    let completed = false;
    try {
      for await (const message of messages) {
        sent++;
        yield message;
      }
      completed = true;
    } catch (err) {
      error = ConnectError.from(err);
      throw error;
    } finally {
      signal.removeEventListener("abort", stop);
      open?.dec();
      // A handler also ends normally when its signal aborts (the client cancelled, a deadline passed).
      if (!error && (!completed || signal.aborted)) error = canceled(signal);
      // With the responses a live writer put on the wire past this stream.
      finished(call, error, sent + (call.req.contextValues.get(liveWriterKey)?.written ?? 0));
    }
  })();
  let deadline: ConnectError | undefined;
  function stop() {
    if (signal.reason instanceof ConnectError && signal.reason.code === Code.DeadlineExceeded) deadline = signal.reason;
    // Runs the stream's finally blocks, wherever it waits (at a message, or once its handler yields).
    stream.return(undefined).catch(() => {});
    // One that never started has no finally of its own to report how it ended.
    if (!started) finished(call, canceled(signal), 0);
  }
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  // A stream ended here by its deadline (while it waited at a message) ends DEADLINE_EXCEEDED, not OK.
  return {
    [Symbol.asyncIterator]() {
      return {
        next: async () => {
          const r = await stream.next();
          if (r.done && deadline) throw deadline;
          return r;
        },
        return: (value?: unknown) => stream.return(value as undefined),
        throw: (err?: unknown) => stream.throw(err),
      };
    },
  };
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
