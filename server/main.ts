// Entry point: reads the config, opens the tiers, starts the roles this
// process runs (`npm start` runs them all), and on SIGINT/SIGTERM shuts down
// in phases (server drained, workers stopped, tiers closed) within
// EVENTIDE_SHUTDOWN_TIMEOUT.
import { pino } from "pino";
import { type RunningServer, startServer } from "./app.js";
import { type Config, ConfigError, loadConfig } from "./config.js";
import { buildCore } from "./core.js";
import { startArchiver, startDispatcher, startPersister, startReferenceAgent } from "./roles.js";
import { sleep } from "./domain/wait.js";
import { isConnectionError } from "./interceptors/errors.js";
import { createLogger } from "./observability/logger.js";
import { serveMetrics } from "./observability/metrics-server.js";
import { trimHeapWhenIdle } from "./runtime/idle-heap-trim.js";
import { openTiers, type Tiers } from "./tiers/open-tiers.js";

async function main(): Promise<void> {
  const config = loadConfig(process.env, process.argv.slice(2));
  const log = createLogger(config);
  // A process that only runs the reference agent talks to a server, never to the tiers.
  if (config.roles.every((r) => r === "agent")) return runAgentOnly(config, log);
  // Listening from the first moment: a signal that comes while the tiers open or the server
  // binds is kept, and the shutdown runs once everything it must stop has started.
  const stopRequested = new AbortController();
  let phase = "starting";
  /** EVENTIDE_SHUTDOWN_TIMEOUT counts from the signal. */
  let stopDeadline = Infinity;
  /** Role names still running, for the shutdown log. */
  const running = new Set<string>();
  const requestStop = (signal: string) => {
    if (stopRequested.signal.aborted) return;
    stopDeadline = Date.now() + config.shutdownTimeoutMs;
    exitAtDeadline(log, config.shutdownTimeoutMs, () => ({ phase, workersRunning: [...running] }));
    log.info({ signal, timeoutMs: config.shutdownTimeoutMs, phase }, "shutting down");
    stopRequested.abort(); // runs the shutdown, once there is one to run
  };
  process.on("SIGINT", () => requestStop("SIGINT"));
  process.on("SIGTERM", () => requestStop("SIGTERM"));
  const tiers = await openTiersPatiently(config, log, stopRequested.signal);
  if (stopRequested.signal.aborted) {
    // Stopped before any role started: nothing to drain, so none starts (a persister would take partitions only to give them back).
    await tiers.close();
    log.info("shutdown: done");
    process.exit(0);
  }
  const core = buildCore(config, tiers, log);
  const metricsServer = config.metricsPort === undefined ? undefined : await serveMetrics(core.metrics, config.metricsPort, config.host);
  const root = new AbortController();
  trimHeapWhenIdle({ idleAfterMs: config.idleHeapTrimMs, sampleMs: 1_000 }, log, root.signal, core.metrics);
  // The reference agent stops before the server drains, so it does not chase its own closing server.
  const agentStop = new AbortController();
  /** Role name → its run, for the shutdown log. */
  const workers = new Map<string, Promise<void>>();
  let server: RunningServer | undefined;

  if (config.roles.includes("persister")) workers.set("persister", startPersister(config, tiers, log, root.signal, core));
  if (config.roles.includes("archiver")) workers.set("archiver", startArchiver(core, root.signal));
  if (config.roles.includes("dispatcher")) workers.set("dispatcher", startDispatcher(config, core, log, root.signal));
  if (config.roles.includes("server")) server = await startServer(config, core, log, tiers);
  if (config.roles.includes("agent")) workers.set("agent", startReferenceAgent(config, referenceAgentUrl(config, server), log, agentStop.signal));

  for (const [name, work] of workers) {
    running.add(name);
    const gone = () => running.delete(name);
    work.then(gone, gone);
  }
  const stop = async () => {
    phase = "draining the server";
    agentStop.abort();
    if (server) {
      // Health NOT_SERVING; tails and agent feeds end with UNAVAILABLE (feeds requeue their turns
      // first); no new connections; in-flight calls finish. Half the bound, the rest for the workers.
      log.info("shutdown: draining the server");
      await server.close((stopDeadline - Date.now()) / 2);
      log.info("shutdown: server drained");
    }
    phase = "stopping the workers";
    log.info({ workers: [...running] }, "shutdown: stopping the workers");
    root.abort(); // the persister finishes the batch in hand
    await Promise.all(workers.values());
    phase = "closing the tiers";
    log.info("shutdown: closing the tiers");
    await tiers.close();
    await metricsServer?.close();
    log.info("shutdown: done");
    process.exit(0);
  };
  if (stopRequested.signal.aborted) return stop();
  stopRequested.signal.addEventListener("abort", () => void stop(), { once: true });
  // Announced once a signal would stop it gracefully (supervisors and tests read the banner).
  if (server) printBanner(server, config, tiers.describe, config.roles.includes("agent"));
  phase = "running";
  log.info({ roles: config.roles, port: server?.port, metricsPort: metricsServer?.port, tiers: tiers.describe }, "eventide started");
}

/** Past the bound, say what is still open and exit anyway (1: the stop was not clean). */
function exitAtDeadline(log: pino.Logger, timeoutMs: number, stillOpen: () => object): void {
  setTimeout(() => {
    log.error({ timeoutMs, ...stillOpen() }, "shutdown took longer than EVENTIDE_SHUTDOWN_TIMEOUT; exiting anyway");
    process.exit(1);
  }, timeoutMs).unref();
}

async function runAgentOnly(config: Config, log: pino.Logger): Promise<void> {
  const root = new AbortController();
  const stopping = startReferenceAgent(config, referenceAgentUrl(config), log, root.signal);
  const stop = async () => {
    exitAtDeadline(log, config.shutdownTimeoutMs, () => ({ phase: "stopping the agent" }));
    root.abort();
    await stopping;
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
}

/** EVENTIDE_AGENT_URL, or this process's own server (over TLS when it serves TLS: the agent trusts TLS_CERT). */
function referenceAgentUrl(config: Config, server?: RunningServer): string {
  if (config.agent.url) return config.agent.url;
  if (server === undefined) throw new ConfigError("the agent role without the server role needs EVENTIDE_AGENT_URL");
  return `${server.scheme}://127.0.0.1:${server.port}`;
}

/**
 * A tier that is down at start-up is waited for (a supervisor restart loop would only add noise),
 * until `stopRequested`: then there is nothing to shut down, and the process exits 0.
 */
async function openTiersPatiently(config: Config, log: pino.Logger, stopRequested: AbortSignal): Promise<Tiers> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openTiers(config, log);
    } catch (err) {
      if (!isConnectionError(err)) throw err;
      if (stopRequested.aborted) process.exit(0);
      const waitMs = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
      log.warn({ err: String(err), attempt, retryInMs: waitMs }, "a tier is unreachable at start-up; waiting for it");
      await sleep(waitMs, stopRequested);
      if (stopRequested.aborted) process.exit(0);
    }
  }
}

/** Names keys by tenant and role only: the banner never shows a key. */
function authLine(config: Config): string {
  if (config.apiKeys.length === 0) return 'off (no EVENTIDE_API_KEYS: every caller is admin, new threads go to tenant "default")';
  const kinds = config.apiKeys.map((k) => `${k.tenantId}:${k.role}`);
  return `on: ${config.apiKeys.length} API key${config.apiKeys.length > 1 ? "s" : ""} (${[...new Set(kinds)].join(", ")}); send Authorization: Bearer <key>`;
}

function printBanner(server: RunningServer, config: Config, tiers: Record<string, string>, agent: boolean): void {
  const url = `${server.scheme}://127.0.0.1:${server.port}`;
  // Over TLS, ALPN picks HTTP/2; --cacert trusts a self-signed TLS_CERT.
  const curl = config.tls ? `npx buf curl --protocol grpc --cacert ${config.tls.certFile}` : `npx buf curl --protocol grpc --http2-prior-knowledge`;
  process.stdout.write(`
eventide is up on ${url} (gRPC, gRPC-Web and Connect on one port${config.tls ? ", TLS with HTTP/2 and HTTP/1.1" : ""}; /healthz, /readyz)
  console ${url}/ (open it in a browser)
${Object.entries(tiers).map(([k, v]) => `  ${k.padEnd(7)} ${v}`).join("\n")}
  auth    ${authLine(config)}
  agent   ${agent ? "the reference agent answers every turn (EVENTIDE_ROLES without agent to run your own)" : "none in this process: connect yours to AgentService.ReceiveTurns"}

Try it (in another terminal, from this folder${config.apiKeys.length ? '; add -H "Authorization: Bearer <key>"' : ""}):
  ${curl} --list-methods ${url}
  ${curl} -d '{"input":{"text":"hello"}}' ${url}/eventide.v1.TurnService/SubmitTurn
  ${curl} -d '{"thread_id":"<thread.threadId from above>","follow":true}' ${url}/eventide.v1.EventService/TailEvents
  ${curl} -d '{"agent_id":"me"}' ${url}/eventide.v1.AgentService/ReceiveTurns
  ${curl} -d '{"thread_id":"<id>","events":[{"type":"message.delta","payload":{"delta":"hi"}}]}' ${url}/eventide.v1.EventService/AppendEvents

`);
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`eventide: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`eventide failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
