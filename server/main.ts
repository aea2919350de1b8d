// Entry point: reads the config, opens the tiers, starts the roles this
// process runs (`npm start` runs them all), and on SIGINT/SIGTERM aborts one
// root signal and waits for every role to finish.
import { pino } from "pino";
import { type RunningServer, startServer } from "./app.js";
import { type Config, ConfigError, loadConfig } from "./config.js";
import { buildCore } from "./core.js";
import { startArchiver, startDispatcher, startPersister, startReferenceAgent } from "./roles.js";
import { sleep } from "./domain/wait.js";
import { isConnectionError } from "./interceptors/errors.js";
import { createLogger } from "./observability/logger.js";
import { serveMetrics } from "./observability/metrics-server.js";
import { openTiers, type Tiers } from "./tiers/open-tiers.js";

async function main(): Promise<void> {
  const config = loadConfig(process.env, process.argv.slice(2));
  const log = createLogger(config);
  // A process that only runs the reference agent talks to a server, never to the tiers.
  if (config.roles.every((r) => r === "agent")) return runAgentOnly(config, log);
  const tiers = await openTiersPatiently(config, log);
  const core = buildCore(config, tiers, log);
  const metricsServer = config.metricsPort === undefined ? undefined : await serveMetrics(core.metrics, config.metricsPort, config.host);
  const root = new AbortController();
  const workers: Promise<void>[] = [];
  let server: RunningServer | undefined;

  if (config.roles.includes("persister")) workers.push(startPersister(config, tiers, log, root.signal, core.metrics));
  if (config.roles.includes("archiver")) workers.push(startArchiver(core, root.signal));
  if (config.roles.includes("dispatcher")) workers.push(startDispatcher(config, core, log, root.signal));
  if (config.roles.includes("server")) {
    server = await startServer(config, core, log);
    printBanner(server.port, tiers.describe, config.roles.includes("agent"));
  }
  if (config.roles.includes("agent")) workers.push(startReferenceAgent(config, referenceAgentUrl(config, server?.port), log, root.signal));
  log.info({ roles: config.roles, port: server?.port, metricsPort: metricsServer?.port, tiers: tiers.describe }, "eventide started");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    await server?.close();
    root.abort();
    await Promise.all(workers);
    await tiers.close();
    await metricsServer?.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

async function runAgentOnly(config: Config, log: pino.Logger): Promise<void> {
  const root = new AbortController();
  const stopping = startReferenceAgent(config, referenceAgentUrl(config), log, root.signal);
  const stop = async () => {
    root.abort();
    await stopping;
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
}

/** EVENTIDE_AGENT_URL, or this process's own server. */
function referenceAgentUrl(config: Config, serverPort?: number): string {
  if (config.agent.url) return config.agent.url;
  if (serverPort === undefined) throw new ConfigError("the agent role without the server role needs EVENTIDE_AGENT_URL");
  return `http://127.0.0.1:${serverPort}`;
}

/** A tier that is down at start-up is waited for (a supervisor restart loop would only add noise). */
async function openTiersPatiently(config: Config, log: pino.Logger): Promise<Tiers> {
  const giveUp = new AbortController();
  const stop = () => giveUp.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        return await openTiers(config, log);
      } catch (err) {
        if (!isConnectionError(err) || giveUp.signal.aborted) throw err;
        const waitMs = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
        log.warn({ err: String(err), attempt, retryInMs: waitMs }, "a tier is unreachable at start-up; waiting for it");
        await sleep(waitMs, giveUp.signal);
        if (giveUp.signal.aborted) process.exit(0);
      }
    }
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

function printBanner(port: number, tiers: Record<string, string>, agent: boolean): void {
  const url = `http://127.0.0.1:${port}`;
  const curl = `npx buf curl --protocol grpc --http2-prior-knowledge`;
  process.stdout.write(`
eventide is up on ${url} (gRPC, gRPC-Web and Connect on one port)
${Object.entries(tiers).map(([k, v]) => `  ${k.padEnd(5)} ${v}`).join("\n")}
  auth  off (every caller is tenant "default")
  agent ${agent ? "the reference agent answers every turn (EVENTIDE_ROLES without agent to run your own)" : "none in this process: connect yours to AgentService.ReceiveTurns"}

Try it (in another terminal, from this folder):
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
