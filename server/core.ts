// The objects every role shares, built once from the config and the tiers.
import type { Logger } from "pino";
import { Archiver } from "../workers/archiver/archiver.js";
import { ApiKeys } from "./auth.js";
import type { Config } from "./config.js";
import type { AuthDeps } from "./interceptors/auth.js";
import { DataLossAlarm } from "./observability/data-loss-alarm.js";
import { Metrics } from "./observability/metrics.js";
import { ArchiveReader } from "./log/archive-reader.js";
import { EventLog } from "./log/event-log.js";
import { ThreadEraser } from "./log/thread-eraser.js";
import type { Tiers } from "./tiers/open-tiers.js";
import type { TurnDispatch } from "./tiers/hot/turn-dispatch.js";

export interface Core {
  events: EventLog;
  eraser: ThreadEraser;
  archiver: Archiver;
  dispatch: TurnDispatch;
  auth: AuthDeps;
  metrics: Metrics;
  /** Holes in a thread's log found by this process's reads and persister. */
  alarm: DataLossAlarm;
}

export function buildCore(config: Config, tiers: Tiers, log: Logger): Core {
  const limits = tiers.limits;
  const metrics = new Metrics({ dispatch: tiers.dispatch, streams: limits });
  const archives = new ArchiveReader(tiers.cold, config.archiveCacheBytes);
  const alarm = new DataLossAlarm(log, metrics);
  const events = new EventLog(tiers.hot, tiers.warm, archives, metrics, alarm);
  const eraser = new ThreadEraser(tiers, archives, log);
  const archiver = new Archiver({
    warm: tiers.warm,
    cold: tiers.cold,
    log: log.child({ role: "archiver" }),
    archiveAfterMs: config.archiveAfterMs,
    maxEventsPerObject: config.archiveMaxEvents,
    intervalMs: config.archiveIntervalMs,
    leaseMs: config.archiveLeaseMs,
    retentionMs: config.retentionMs,
    eraseIfIdle: (thread, cutoff) => eraser.eraseIfIdle(thread, cutoff),
    metrics,
  });
  const auth = { keys: new ApiKeys(config.apiKeys), limits };
  return { events, eraser, archiver, dispatch: tiers.dispatch, auth, metrics, alarm };
}
