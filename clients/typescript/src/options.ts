// What every transport factory takes (Node and browsers alike).
import type { ApiKey } from "./bearer.js";
import type { Backoff } from "./retry.js";

export type Protocol = "connect" | "grpc" | "grpc-web";

export interface ConnectionOptions {
  /** The server, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** Sent as a bearer token when the server has API keys. */
  apiKey?: ApiKey;
  /** Default: grpc in Node, connect in browsers (which cannot speak gRPC). */
  protocol?: Protocol;
}

export interface CallPolicy {
  /** A deadline for each unary call (default 10 s): past it the call fails DEADLINE_EXCEEDED and is retried. */
  timeoutMs?: number;
  /** Writes are retried on UNAVAILABLE and DEADLINE_EXCEEDED until this much time has passed (default 60 s). */
  retryForMs?: number;
  backoff?: Backoff;
}
