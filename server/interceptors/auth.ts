// Authenticates every eventide RPC (`Authorization: Bearer <key>`), checks the
// key's role may call the method, spends the key's limits, and hands the
// caller to the services through the context. Health and reflection stay open:
// load balancers and grpcurl call them without keys.
import {
  Code,
  ConnectError,
  type ContextValues,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { anonymousCaller, type ApiKeys, authorizationHeaderCount, type Caller, callerKey, countAuthorizationHeaders, duplicateAuthorization } from "../auth.js";
import type { CallerRole } from "../config.js";
import type { CallerLimits } from "../limits/caller-limits.js";
import { passThrough } from "./pass-through.js";
import { CallValues } from "./call-values.js";

export interface AuthDeps {
  keys: ApiKeys;
  limits: CallerLimits;
}

const openServices = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

const reads = ["GetThread", "ListThreads", "GetTurn", "ListTurns", "TailEvents", "ListEvents", "GetEvent", "ListArchives", "GetArchive"];
const clientWrites = ["CreateThread", "SubmitTurn", "CancelTurn", "DeleteThread"];
const agentWork = ["ReceiveTurns", "RenewLease", "CompleteTurn", "FailTurn", "AppendEvents"];

/**
 * What each role may call (admin: everything). Clients submit, cancel and read;
 * agents run turns and read the history they need; moving data to the cold
 * tier (ArchiveThread) is an operator's call.
 */
const allowedMethods: Record<CallerRole, Set<string> | "all"> = {
  client: new Set([...reads, ...clientWrites]),
  agent: new Set([...reads, ...agentWork]),
  admin: "all",
};

export function mayCall(role: CallerRole, method: string): boolean {
  const allowed = allowedMethods[role];
  return allowed === "all" || allowed.has(method);
}

/** The request's context values as the Node adapter builds them: what auth needs from the raw request. */
export function authContextValues(req: { rawHeaders: string[] }): ContextValues {
  const values = new CallValues();
  values.set(authorizationHeaderCount, countAuthorizationHeaders(req.rawHeaders));
  return values;
}

export function authenticate(deps: AuthDeps): Interceptor {
  return (next) => async (req) => {
    if (openServices.has(req.service.typeName)) return withoutKey(req, deps, next);
    // Which of two keys would count is anybody's guess (Node keeps the first): refused, keys or not.
    if (req.contextValues.get(authorizationHeaderCount) > 1) throw new ConnectError(duplicateAuthorization, Code.Unauthenticated);
    if (!deps.keys.enabled) return withoutKey(req, deps, next);
    const caller = callerOfRequest(deps.keys, req.header.get("authorization"));
    // Set first, so the log line of a refused call names the key.
    req.contextValues.set(callerKey, caller);
    const method = req.method.name;
    if (!mayCall(caller.role, method)) {
      throw new ConnectError(`an API key with role ${caller.role} may not call ${req.service.typeName}/${method}`, Code.PermissionDenied);
    }
    await deps.limits.spendRequest(caller);
    if (req.method.methodKind !== "server_streaming") return next(req);
    return holdingStreamSlot(req, await deps.limits.openStream(caller), next);
  };
}

/** No key to count its streams against: such streams (a health Watch costs little, but it never ends) share one cap. */
/** No key to count its streams against: such streams (a health Watch costs little, but it never ends) share one cap. */
async function withoutKey(req: UnaryRequest | StreamRequest, deps: AuthDeps, next: (req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>) {
  return req.method.methodKind === "unary" ? next(req) : holdingStreamSlot(req, await deps.limits.openStream(anonymousCaller), next);
}

/**
 * Runs a stream that holds a slot: given back when the stream ends, or as soon
 * as the call is over for the client (it left, or its deadline passed), even if
 * the stream itself has not finished cleaning up by then.
 */
async function holdingStreamSlot(req: UnaryRequest | StreamRequest, release: () => void, next: (req: UnaryRequest | StreamRequest) => Promise<UnaryResponse | StreamResponse>) {
  if (req.signal.aborted) release();
  else req.signal.addEventListener("abort", release, { once: true });
  try {
    const res = await next(req);
    if (!res.stream) {
      release();
      return res;
    }
    return { ...res, message: passThrough(res.message, { end: release }) };
  } catch (err) {
    release();
    throw err;
  }
}

function callerOfRequest(keys: ApiKeys, authorization: string | null): Caller {
  if (!authorization) throw new ConnectError("this server requires an API key: send `Authorization: Bearer <key>`", Code.Unauthenticated);
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (!match) throw new ConnectError("the Authorization header must be `Bearer <key>`", Code.Unauthenticated);
  const caller = keys.callerFor(match[1]);
  if (!caller) throw new ConnectError("unknown API key", Code.Unauthenticated);
  return caller;
}
