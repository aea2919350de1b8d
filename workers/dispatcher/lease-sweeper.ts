// The dispatcher worker: requeues turns whose lease lapsed (a dead or stuck
// agent), and rebuilds dispatch state the hot tier lost (Redis flushed or
// failed over empty) from Postgres's projection of open turns. Several may run
// at once: every step is one atomic script that checks before it acts.
import type { Logger } from "pino";
import { sleep } from "../../server/domain/wait.js";
import type { EventLog } from "../../server/log/event-log.js";
import type { Metrics } from "../../server/observability/metrics.js";
import type { TurnDispatch } from "../../server/tiers/hot/turn-dispatch.js";

export interface LeaseSweeperOptions {
  dispatch: TurnDispatch;
  log: EventLog;
  logger: Logger;
  intervalMs: number;
  /** How often the warm projection is checked for threads the hot tier lost. */
  rebuildIntervalMs: number;
  metrics?: Metrics;
}

export class LeaseSweeper {
  constructor(private readonly opts: LeaseSweeperOptions) {}

  async run(signal: AbortSignal): Promise<void> {
    let nextRebuild = 0;
    while (!signal.aborted) {
      try {
        if (Date.now() >= nextRebuild) {
          await this.rebuild(signal);
          nextRebuild = Date.now() + this.opts.rebuildIntervalMs;
        }
        await this.sweep();
      } catch (err) {
        this.opts.logger.warn({ err: String(err) }, "lease sweep failed; retrying");
      }
      await sleep(this.opts.intervalMs, signal);
    }
  }

  /** Requeues (or dead-letters) every turn whose lease lapsed; returns how many. */
  async sweep(): Promise<number> {
    let released = 0;
    for (;;) {
      const lapsed = await this.opts.dispatch.lapsedLeases(100);
      for (const leaseId of lapsed) {
        await this.opts.dispatch.release(leaseId, "lease lapsed", true);
        this.opts.metrics?.leaseExpiries.inc();
        this.opts.logger.info({ leaseId }, "lease lapsed; turn requeued");
      }
      released += lapsed.length;
      if (lapsed.length < 100) return released;
    }
  }

  /** Threads with open turns in Postgres that the hot tier does not hold get their state back; returns how many. */
  async rebuild(signal?: AbortSignal): Promise<number> {
    let restored = 0;
    let after = "";
    for (;;) {
      const threads = await this.opts.log.warm.threadsWithOpenTurns(after, 500);
      for (const threadId of threads) {
        if (signal?.aborted) return restored;
        if (await this.opts.log.hot.getThread(threadId)) continue;
        if (await this.opts.log.restoreThread(threadId)) restored++;
      }
      if (threads.length < 500) break;
      after = threads[threads.length - 1];
    }
    if (restored > 0) this.opts.logger.warn({ threads: restored }, "rebuilt dispatch state of threads the hot tier had lost");
    return restored;
  }
}
