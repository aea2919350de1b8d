// Builds the RPC surface on the tiers and serves it on one port.
import { setTimeout as delay } from "node:timers/promises";
import type { DescFile } from "@bufbuild/protobuf";
import { type ConnectRouter, createRouterTransport } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { AgentService, file_eventide_v1_agent_service } from "../gen/eventide/v1/agent_service_pb.js";
import { ArchiveService, file_eventide_v1_archive_service } from "../gen/eventide/v1/archive_service_pb.js";
import { EventService, file_eventide_v1_event_service } from "../gen/eventide/v1/event_service_pb.js";
import { TurnService, file_eventide_v1_turn_service } from "../gen/eventide/v1/turn_service_pb.js";
import { file_grpc_health_v1_health, Health } from "../gen/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { file_grpc_reflection_v1alpha_reflection } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { Config } from "./config.js";
import type { Core } from "./core.js";
import { authContextValues, authenticate } from "./interceptors/auth.js";
import { errorInterceptor } from "./interceptors/errors.js";
import { observeRpcs } from "./interceptors/observe.js";
import { validateRequests } from "./interceptors/validate.js";
import { defaultGraceMs, type ListeningServer, listen, withCors } from "./http-server.js";
import { Readiness, withProbes } from "./health-probes.js";
import { consoleRoutes } from "./http/console.js";
import { originalApiRoutes } from "./http/original-api.js";
import { withHttpRoutes } from "./http/routes.js";
import { jsonOptions } from "./wire/json-requests.js";
import { refuseProtoKeys } from "./wire/proto-keys.js";
import { wirePath } from "./wire/wire-path.js";
import { agentService } from "./services/agent-service.js";
import { archiveService } from "./services/archive-service.js";
import { eventService } from "./services/event-service.js";
import { HealthStatus, healthService } from "./services/health-service.js";
import { registerReflection } from "./services/reflection-service.js";
import { StreamShutdown } from "./services/shutdown.js";
import { turnService } from "./services/turn-service.js";
import type { Tiers } from "./tiers/open-tiers.js";

/** Request encodings the server takes (connect-node's default). */
const acceptCompression = [compressionGzip, compressionBrotli];

/** What reflection announces: our four services, health and reflection itself. */
const announcedFiles: DescFile[] = [
  file_eventide_v1_turn_service,
  file_eventide_v1_event_service,
  file_eventide_v1_archive_service,
  file_eventide_v1_agent_service,
  file_grpc_health_v1_health,
  file_grpc_reflection_v1_reflection,
  file_grpc_reflection_v1alpha_reflection,
];

export interface RunningServer {
  port: number;
  scheme: "http" | "https";
  health: HealthStatus;
  /**
   * Ends long streams (UNAVAILABLE), stops taking connections, lets calls finish; drops what is left after graceMs.
   * Resolves once the ended streams have cleaned up too (agent feeds requeued their turns), at most graceMs later.
   */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(config: Config, core: Core, log: Logger, tiers: Pick<Tiers, "checkReady">): Promise<RunningServer> {
  const health = new HealthStatus();
  const streams = new StreamShutdown(health.shuttingDown);
  const { events } = core;
  // One implementation for Connect's router and the wire path.
  const turnImpl = turnService({ log: events, eraser: core.eraser, dispatch: core.dispatch });
  const eventImpl = eventService({ log: events, heartbeatMs: config.heartbeatMs, tailBuffer: config.tailBuffer, shutdown: streams });
  const routes = (router: ConnectRouter) => {
    router.service(TurnService, turnImpl);
    router.service(EventService, eventImpl);
    router.service(ArchiveService, archiveService({ log: events, archiver: core.archiver }));
    router.service(AgentService, agentService({ dispatch: core.dispatch, events, pollMs: config.dispatch.sweepIntervalMs, log, shutdown: streams }));
    router.service(Health, healthService(health));
    registerReflection(router, announcedFiles);
    refuseProtoKeys(router, { compressions: acceptCompression, readMaxBytes: config.limits.maxRequestBytes });
  };
  // Outermost first: observation sees every call's final code (auth refusals too),
  // auth runs before validation (an anonymous caller learns nothing about a request's shape).
  const interceptors = [observeRpcs(log, core.metrics), authenticate(core.auth), validateRequests(), errorInterceptor(log)];
  const rpcOptions = {
    interceptors,
    acceptCompression,
    contextValues: authContextValues,
    jsonOptions,
    // Larger requests are refused (RESOURCE_EXHAUSTED) before decoding.
    readMaxBytes: config.limits.maxRequestBytes,
    // Appends echo their events: gzipping every response costs more CPU than it saves
    // on loopback and LAN links; only really large responses are worth it.
    compressMinBytes: 4 * 1024 * 1024,
  };
  const rpcHandler = connectNodeAdapter({ routes, ...rpcOptions });
  // The hot RPCs over the binary protocols on HTTP/2, past Connect's per-call plumbing, through the same interceptors.
  const wire = config.wirePath
    ? wirePath({ service: eventImpl, turns: turnImpl, ...rpcOptions, corsOrigins: config.corsOrigins, scheme: config.tls ? "https" : "http" })
    : undefined;
  // The original HTTP API calls the same services in-process, through the same interceptors.
  const inProcess = createRouterTransport(routes, { router: { interceptors, jsonOptions, readMaxBytes: config.limits.maxRequestBytes } });
  const httpRoutes = [...consoleRoutes(config.consoleDir), ...originalApiRoutes({ transport: inProcess, maxBodyBytes: config.limits.maxRequestBytes })];
  const handler = withHttpRoutes(httpRoutes, rpcHandler, (err) => log.error({ err }, "HTTP route failed"));
  const readiness = new Readiness({
    checkTiers: () => tiers.checkReady(),
    health,
    services: [TurnService.typeName, EventService.typeName, ArchiveService.typeName, AgentService.typeName],
    log,
  });
  const server: ListeningServer = await listen(withProbes(readiness, health, withCors(config.corsOrigins, handler), core.alarm), {
    port: config.port,
    host: config.host,
    limits: config.connections,
    tls: config.tls,
    streams: wire,
  });
  return {
    port: server.port,
    scheme: server.scheme,
    health,
    async close(graceMs = defaultGraceMs) {
      health.markShuttingDown(); // tails and agent feeds end now, with UNAVAILABLE
      const dropped = await server.close(graceMs);
      if (dropped.requests + dropped.http1Connections + dropped.http2Sessions > 0) {
        log.warn({ dropped }, "connections still open after the grace period were dropped");
      }
      // A stream's clean-up can outlast its connection: a departing agent feed may still be
      // requeueing its turns, and the tiers are closed once this returns.
      if (!(await Promise.race([streams.ended().then(() => true), delay(graceMs, false, { ref: false })]))) {
        log.warn({ waitedMs: graceMs }, "streams still cleaning up after the grace period; closing anyway");
      }
    },
  };
}
