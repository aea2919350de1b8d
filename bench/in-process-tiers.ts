// The real tiers opened inside the bench process (the same openTiers the
// server runs), for scenarios that drive the hot tier, the Persister and the
// Archiver directly instead of through a server.
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Logger, pino } from "pino";
import { type Config, loadConfig } from "../server/config.js";
import type { StoredEvent } from "../server/domain/records.js";
import { openTiers, type Tiers } from "../server/tiers/open-tiers.js";
import type { PostgresWarmStore } from "../server/tiers/warm/postgres/postgres-warm-store.js";
import { Persister } from "../workers/persister/persister.js";
import { onInterrupt } from "./cleanup.js";
import type { TierEnv } from "./tier-env.js";

export interface InProcessTiers {
  config: Config;
  tiers: Tiers;
  log: Logger;
  /** The warm tier's pg-promise database (Postgres, or PGlite on tier memory). */
  db: PostgresWarmStore["db"];
  /** What the in-process roles logged at warn level and above. */
  warnings: string[];
  /** Closes the tiers; drops their data too when `drop` (the caller owns the TierEnv). */
  close(drop: boolean): Promise<void>;
}

export async function openInProcess(tierEnv: TierEnv, logLevel: string): Promise<InProcessTiers> {
  const config = loadConfig({ ...tierEnv.env, EVENTIDE_ROLES: "server" });
  const warnings: string[] = [];
  const log = pino(
    {
      level: logLevel,
      base: { process: "bench" },
      hooks: {
        logMethod(args, method, level) {
          if (level >= 40) warnings.push(describeLogCall(args));
          method.apply(this, args);
        },
      },
    },
    pino.destination(2),
  );
  const tiers = await openTiers(config, log);
  let closed = false;
  const close = async (drop: boolean) => {
    if (closed) return;
    closed = true;
    forget();
    await tiers.close();
    // On EVENTIDE_DATA_DIR=memory: the directory cold store is named after this process.
    await rm(join(tmpdir(), `eventide-archive-${process.pid}`), { recursive: true, force: true });
    if (drop) await tierEnv.drop();
  };
  const forget = onInterrupt(() => close(true));
  return { config, tiers, log, db: (tiers.warm as PostgresWarmStore).db, warnings, close };
}

export interface RunningPersister {
  /** Aborts the run loop and waits for it to release its leases. */
  stop(): Promise<void>;
}

/** A Persister as server/roles.ts builds one, with the settings of the brief (the config defaults). */
export function startPersister(t: InProcessTiers, onCommitted?: (events: StoredEvent[]) => void): RunningPersister {
  const abort = new AbortController();
  const running = new Persister({
    feeds: t.tiers.feeds,
    leases: t.tiers.leases,
    warm: t.tiers.warm,
    log: t.log.child({ role: "persister" }),
    batchEvents: 2000,
    batchWaitMs: 50,
    hotWindow: 1000,
    leaseMs: 10_000,
    onCommitted,
  }).run(abort.signal);
  return {
    async stop() {
      abort.abort();
      await running;
    },
  };
}

/** A pino call's message, with its `err` when it has one. */
function describeLogCall(args: unknown[]): string {
  const msg = args.find((a): a is string => typeof a === "string") ?? "";
  const first = args[0] as { err?: unknown } | undefined;
  return first && typeof first === "object" && first.err !== undefined ? `${msg} (${String(first.err)})` : msg;
}
