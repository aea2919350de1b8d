// The background roles, built from the config and the tiers; main.ts and the
// test harness start them the same way.
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { LeaseSweeper } from "../workers/dispatcher/lease-sweeper.js";
import { Persister } from "../workers/persister/persister.js";
import { ReferenceAgent } from "../workers/reference-agent/reference-agent.js";
import type { Config } from "./config.js";
import type { Core } from "./core.js";
import type { Tiers } from "./tiers/open-tiers.js";

export function startPersister(
  config: Config,
  tiers: Tiers,
  log: Logger,
  signal: AbortSignal,
  /** The core's metrics (batches, persisted events, lag) and data-loss alarm. */
  core?: Pick<Core, "metrics" | "alarm">,
): Promise<void> {
  return new Persister({
    feeds: tiers.feeds,
    leases: tiers.leases,
    warm: tiers.warm,
    log: log.child({ role: "persister" }),
    batchEvents: config.persistBatchEvents,
    batchWaitMs: config.persistWaitMs,
    hotWindow: config.hotWindow,
    leaseMs: config.persistLeaseMs,
    metrics: core?.metrics,
    alarm: core?.alarm,
  }).run(signal);
}

export function startArchiver(core: Core, signal: AbortSignal): Promise<void> {
  return core.archiver.run(signal);
}

export function startDispatcher(config: Config, core: Core, log: Logger, signal: AbortSignal): Promise<void> {
  return new LeaseSweeper({
    dispatch: core.dispatch,
    log: core.events,
    logger: log.child({ role: "dispatcher" }),
    intervalMs: config.dispatch.sweepIntervalMs,
    rebuildIntervalMs: 60_000,
    metrics: core.metrics,
  }).run(signal);
}

/** The reference agent, against `baseUrl` (this process's server when it runs one). */
export function startReferenceAgent(config: Config, baseUrl: string, log: Logger, signal: AbortSignal): Promise<void> {
  return new ReferenceAgent({
    baseUrl,
    agentId: config.agent.agentId,
    maxInFlight: config.agent.maxInFlight,
    tokenDelayMs: config.agent.tokenDelayMs,
    apiKey: referenceAgentKey(config),
    // With TLS on, the agent trusts the configured certificate (self-signed is fine).
    trustedCertPem: config.tls ? readFileSync(config.tls.certFile, "utf8") : undefined,
    log: log.child({ role: "agent" }),
  }).run(signal);
}

/** The key the reference agent authenticates with: its own setting, else an agent key from the list. */
function referenceAgentKey(config: Config): string | undefined {
  if (config.agent.apiKey) return config.agent.apiKey;
  const agentKeys = config.apiKeys.filter((k) => k.role === "agent");
  return (agentKeys.find((k) => k.tenantId === "*") ?? agentKeys[0])?.key;
}
