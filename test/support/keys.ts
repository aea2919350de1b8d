// Clients that authenticate with an API key, for servers started with EVENTIDE_API_KEYS.
import { type Client, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AgentService } from "../../gen/eventide/v1/agent_service_pb.js";
import { ArchiveService } from "../../gen/eventide/v1/archive_service_pb.js";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";

export interface KeyedClients {
  transport: Transport;
  turns: Client<typeof TurnService>;
  events: Client<typeof EventService>;
  archives: Client<typeof ArchiveService>;
  agents: Client<typeof AgentService>;
}

/** gRPC clients of `baseUrl` sending `authorization` as given (undefined: no header). */
export function clientsWithAuthorization(baseUrl: string, authorization: string | undefined): KeyedClients {
  const bearer: Interceptor = (next) => (req) => {
    if (authorization !== undefined) req.header.set("authorization", authorization);
    return next(req);
  };
  const transport = createGrpcTransport({ baseUrl, interceptors: [bearer] });
  return {
    transport,
    turns: createClient(TurnService, transport),
    events: createClient(EventService, transport),
    archives: createClient(ArchiveService, transport),
    agents: createClient(AgentService, transport),
  };
}

export function clientsWithKey(baseUrl: string, key: string): KeyedClients {
  return clientsWithAuthorization(baseUrl, `Bearer ${key}`);
}

/** EVENTIDE_API_KEYS for a set of named keys. */
export function apiKeysEnv(keys: Record<string, { key: string; tenant: string; role: string }>): string {
  return Object.values(keys)
    .map((k) => `${k.key}:${k.tenant}:${k.role}`)
    .join(",");
}

/** The error a call answers; throws when it succeeds. */
export async function refusal(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}
