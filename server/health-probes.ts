// Plain HTTP probes on the main port, for load balancers and Kubernetes:
// GET /healthz (live: the process serves) and GET /readyz (every tier
// reachable and not shutting down). No auth; HTTP/1.1 and HTTP/2 alike.
// The gRPC health of the services that need the tiers follows readiness too.
import type { Logger } from "pino";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { sleep } from "./domain/wait.js";
import type { RequestHandler } from "./http-server.js";
import { writeHead } from "./http/routes.js";
import type { DataLossAlarm } from "./observability/data-loss-alarm.js";
import type { HealthStatus } from "./services/health-service.js";
import type { TierReadiness } from "./tiers/open-tiers.js";

export interface ReadinessOptions {
  checkTiers: () => Promise<TierReadiness>;
  health: HealthStatus;
  /** gRPC services that need the tiers: NOT_SERVING while one is unreachable ("" stays the liveness). */
  services: string[];
  log: Logger;
  /** How often tiers are checked when no probe asks. */
  intervalMs?: number;
}

export class Readiness {
  private checking?: Promise<TierReadiness>;
  private last: TierReadiness = { ready: true, tiers: {} };

  constructor(private readonly opts: ReadinessOptions) {
    for (const service of opts.services) opts.health.set(service, ServingStatus.SERVING);
    void this.monitor(opts.intervalMs ?? 5_000, opts.health.shuttingDown);
  }

  /** Checks the tiers now; concurrent callers share one check. */
  check(): Promise<TierReadiness> {
    this.checking ??= this.opts
      .checkTiers()
      .then((result) => this.record(result))
      .finally(() => (this.checking = undefined));
    return this.checking;
  }

  /** The latest result, without checking. */
  get latest(): TierReadiness {
    return this.last;
  }

  private record(result: TierReadiness): TierReadiness {
    const { log, health, services } = this.opts;
    if (result.ready !== this.last.ready) {
      if (result.ready) log.info({ tiers: states(result) }, "every tier is reachable again: ready");
      else log.warn({ tiers: result.tiers }, "a tier is unreachable: not ready");
    }
    this.last = result;
    for (const service of services) health.set(service, result.ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING);
    return result;
  }

  private async monitor(intervalMs: number, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await sleep(intervalMs, signal);
      if (signal.aborted) return;
      await this.check().catch((err) => this.opts.log.warn({ err: String(err) }, "readiness check failed"));
    }
  }
}

/**
 * Answers /healthz and /readyz; every other request goes to `next`. /readyz
 * lists the holes this process found in threads' logs (`dataLoss`), and still
 * answers by the tiers alone: a hole in one thread is an operator's alarm
 * (eventide_data_loss_total), not a reason to take every server out of rotation.
 */
export function withProbes(readiness: Readiness, health: HealthStatus, next: RequestHandler, alarm?: DataLossAlarm): RequestHandler {
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/healthz" && path !== "/readyz") return next(req, res);
    const reply = (status: number, body: object) => {
      if (res.writableEnded || req.destroyed) return; // the prober gave up meanwhile
      writeHead(res, status, { "content-type": "application/json", "cache-control": "no-store" });
      if (req.method === "HEAD") res.end();
      else res.end(JSON.stringify(body));
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      writeHead(res, 405, { allow: "GET, HEAD" });
      res.end();
      return;
    }
    // Live while the process answers, draining included: restarting it would not help.
    if (path === "/healthz") return reply(200, { status: "ok" });
    if (health.shuttingDown.aborted) return reply(503, { status: "shutting down", tiers: states(readiness.latest) });
    readiness.check().then(
      (result) => {
        const holes = alarm?.holes ?? [];
        const body = { status: result.ready ? "ready" : "not ready", tiers: states(result), ...(holes.length > 0 && { dataLoss: holes }) };
        reply(result.ready ? 200 : 503, body);
      },
      () => reply(503, { status: "not ready" }),
    );
  };
}

/** Each tier's state, without the error text (it may name hosts; the log has it). */
function states(result: TierReadiness): Record<string, string> {
  return Object.fromEntries(Object.entries(result.tiers).map(([name, check]) => [name, check.state]));
}
