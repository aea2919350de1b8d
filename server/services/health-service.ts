// gRPC health checking (grpc/health/v1): what load balancers, Kubernetes probes and
// grpc_health_probe ask. Spec: https://github.com/grpc/grpc/blob/master/doc/health-checking.md
import { EventEmitter, on } from "node:events";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";

/** Serving status per service name; "" is the server as a whole. */
export class HealthStatus {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly emitter = new EventEmitter();
  private readonly shutdown = new AbortController();

  /** The overall status starts SERVING, as in grpc-go: a server that answers is up. */
  constructor(overall: ServingStatus = ServingStatus.SERVING) {
    this.statuses.set("", overall);
    this.emitter.setMaxListeners(0); // one listener per open Watch; no leak warning
  }

  get(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  set(service: string, status: ServingStatus): void {
    // Once shutting down, a late set(SERVING) must not invite new traffic.
    if (this.shutdown.signal.aborted || this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    this.emitter.emit("change", service);
  }

  /**
   * Every known service goes NOT_SERVING and stays so, and `shuttingDown`
   * aborts (long streams end); call before draining connections.
   */
  markShuttingDown(): void {
    for (const service of this.statuses.keys()) this.set(service, ServingStatus.NOT_SERVING);
    this.shutdown.abort();
  }

  /** Aborts when the server starts shutting down. */
  get shuttingDown(): AbortSignal {
    return this.shutdown.signal;
  }

  /** Yields [service] for each status change from now on; throws AbortError when signal aborts. */
  changes(signal: AbortSignal): AsyncIterableIterator<string[]> {
    return on(this.emitter, "change", { signal });
  }
}

export function healthService(status: HealthStatus): ServiceImpl<typeof Health> {
  return {
    check(req) {
      const current = status.get(req.service);
      if (current === undefined) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
      return { status: current };
    },
    async *watch(req, ctx) {
      const current = () => status.get(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
      const shuttingDown = () => new ConnectError("server shutting down", Code.Unavailable);
      if (status.shuttingDown.aborted) {
        yield { status: current() };
        throw shuttingDown();
      }
      const signal = AbortSignal.any([ctx.signal, status.shuttingDown]);
      // Subscribe before the first read, so a change in between is not lost.
      const changes = status.changes(signal);
      let sent = current();
      try {
        yield { status: sent };
        for await (const [service] of changes) {
          if (service !== req.service || current() === sent) continue;
          sent = current();
          yield { status: sent };
        }
      } catch (err) {
        if (!signal.aborted) throw err; // abort = client gone, server ending the call, or shutdown
      } finally {
        await changes.return?.();
      }
      if (ctx.signal.aborted || !status.shuttingDown.aborted) return;
      // Shutdown: the watcher learns NOT_SERVING, then goes elsewhere.
      if (current() !== sent) yield { status: current() };
      throw shuttingDown();
    },
  };
}
