// The one place where errors become Connect codes. Handlers throw domain
// errors; anything unexpected is logged and answered INTERNAL without details.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import {
  Busy,
  DataLoss,
  DomainError,
  EventIdConflict,
  InvalidInput,
  LeaseLost,
  NotFound,
  OutOfRange,
  ReplicasUnconfirmed,
  StaleExpectedSeq,
  ThreadBusy,
  TierUnavailable,
  TurnCancelled,
  TurnNotStarted,
} from "../domain/errors.js";
import { passThrough } from "./pass-through.js";

export function toConnectError(err: unknown, log: Logger): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof DomainError) return new ConnectError(err.message, domainCode(err));
  if (isConnectionError(err)) {
    log.warn({ err }, "a tier is unreachable");
    // A timed-out write may have landed: clients retry with the same event_ids / idempotency_key.
    return new ConnectError("a storage tier is unavailable; retry (with the same event_ids or idempotency_key)", Code.Unavailable);
  }
  log.error({ err }, "unexpected error");
  return new ConnectError("internal error", Code.Internal);
}

function domainCode(err: DomainError): Code {
  if (err instanceof NotFound) return Code.NotFound;
  if (err instanceof InvalidInput) return Code.InvalidArgument;
  if (err instanceof StaleExpectedSeq) return Code.FailedPrecondition;
  if (err instanceof EventIdConflict) return Code.AlreadyExists;
  if (err instanceof OutOfRange) return Code.OutOfRange;
  if (err instanceof TierUnavailable || err instanceof ReplicasUnconfirmed) return Code.Unavailable;
  if (err instanceof DataLoss) return Code.DataLoss;
  if (err instanceof Busy) return Code.Aborted;
  if (err instanceof ThreadBusy || err instanceof LeaseLost || err instanceof TurnNotStarted) return Code.FailedPrecondition;
  if (err instanceof TurnCancelled) return Code.Canceled;
  return Code.Internal;
}

export function isConnectionError(err: unknown): boolean {
  return (
    err instanceof Error &&
    // CLUSTERDOWN / TRYAGAIN / MASTERDOWN: a Redis Cluster between losing a master and promoting its replica.
    // READONLY, LOADING and a WAIT refused by a replica: a node that was a master, back as a replica
    // (or still loading) while the client's slot map still names it; a retry finds the new master.
    // DisconnectsClient: the cluster client dropped a node's connection as it learnt the new slot map,
    // failing the commands queued on it; RootNodesUnavailable / MaxCommandRedirections: no node, or
    // no settled slot map, reachable yet.
    /ClientClosed|ClientOffline|SocketClosed|SocketTimeout|ConnectionTimeout|TimeoutError|DisconnectsClient|RootNodesUnavailable|MaxCommandRedirections|ECONNREFUSED|ECONNRESET|EPIPE|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|\bREADONLY\b|\bLOADING\b|cannot be used with replica/.test(
      // node-redis's error classes leave `name` as "Error": their class names are matched too.
      `${err.name} ${err.constructor.name} ${err.message}`,
    )
  );
}

/** Maps errors of unary calls and of server streams (thrown mid-stream). */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      return { ...res, message: passThrough(res.message, { mapError: (err) => toConnectError(err, log) }) };
    } catch (err) {
      throw toConnectError(err, log);
    }
  };
}
