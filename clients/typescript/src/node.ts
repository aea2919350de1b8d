// @eventide/client in Node: transports from connect-node (gRPC by default),
// and shutdown on SIGTERM for agents.
import type { Transport } from "@connectrpc/connect";
import type { ClientSessionOptions, SecureClientSessionOptions } from "node:http2";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { ConnectionOptions, CallPolicy } from "./options.js";
import { bearer } from "./bearer.js";
import { EventideClient } from "./client.js";

export * from "./index.js";

export interface NodeClientOptions extends ConnectionOptions, CallPolicy {
  /** TLS and socket options for the HTTP/2 session (e.g. `ca` for a self-signed server). */
  nodeOptions?: ClientSessionOptions | SecureClientSessionOptions;
}

export function createNodeTransport(options: NodeClientOptions): Transport {
  const common = { baseUrl: options.baseUrl, interceptors: options.apiKey ? [bearer(options.apiKey)] : [], nodeOptions: options.nodeOptions };
  switch (options.protocol ?? "grpc") {
    case "grpc":
      return createGrpcTransport(common);
    case "grpc-web":
      return createGrpcWebTransport({ ...common, httpVersion: "2" });
    case "connect":
      return createConnectTransport({ ...common, httpVersion: "2" });
  }
}

/** A client over connect-node. */
export function createNodeClient(options: NodeClientOptions): EventideClient {
  return new EventideClient(createNodeTransport(options), options);
}

/** A signal that aborts on the first of these process signals (SIGTERM, SIGINT): hand it to runAgent or a tail. */
export function abortOnSignals(signals: NodeJS.Signals[] = ["SIGTERM", "SIGINT"]): AbortSignal {
  const controller = new AbortController();
  const abort = () => {
    for (const s of signals) process.off(s, abort);
    controller.abort();
  };
  for (const s of signals) process.once(s, abort);
  return controller.signal;
}
