// @eventide/client in browsers: transports from connect-web (fetch), Connect
// by default (browsers cannot speak gRPC; gRPC-Web works).
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { bearer } from "./bearer.js";
import { EventideClient } from "./client.js";
import type { CallPolicy, ConnectionOptions } from "./options.js";

export * from "./index.js";

export type WebClientOptions = ConnectionOptions & CallPolicy;

export function createWebTransport(options: WebClientOptions): Transport {
  const common = { baseUrl: options.baseUrl, interceptors: options.apiKey ? [bearer(options.apiKey)] : [] };
  switch (options.protocol ?? "connect") {
    case "connect":
      return createConnectTransport(common);
    case "grpc-web":
      return createGrpcWebTransport(common);
    case "grpc":
      throw new Error("browsers cannot speak gRPC: use connect or grpc-web");
  }
}

/** A client over connect-web. */
export function createWebClient(options: WebClientOptions): EventideClient {
  return new EventideClient(createWebTransport(options), options);
}
