// Gives back the heap a burst grew once the process has gone quiet.
//
// Why: V8 keeps what it grew for a burst (a young generation at its 2 × 64 MB maximum, the pages
// a shrink put in its pool, old-space garbage) until a memory-reducing GC. Its memory reducer
// runs one only when it sees the process idle, and in Node 24 it never does: with no GC its
// allocation-rate estimate never decays, so it answers "high alloc" every 8 s for ever (seen with
// --trace-memory-reducer on a server with 10,000 idle tails and nothing allocating for 90 s). It
// also counts a process in memory saver mode as idle. So when the event loop has been nearly idle
// for `idleAfterMs`, this turns V8's memory saver mode on: within one reducer tick (≤ 8 s), an
// incremental, memory-reducing GC returns that memory, and while the mode is on, the young
// generation stays small and every GC reduces. That costs CPU once there is work, so the mode
// goes off as soon as the process is busy again; the heartbeat rounds of idle tails do not count.
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import type { pino } from "pino";
import type { Metrics } from "../observability/metrics.js";

export interface IdleHeapTrimOptions {
  /** Quiet this long before the heap is trimmed (EVENTIDE_IDLE_HEAP_TRIM); 0 = never. */
  idleAfterMs: number;
  /** How often the event loop's busy share is read. */
  sampleMs: number;
}

/** Below this share of the loop busy, on average over `idleAfterMs`, the process is quiet. */
const quietShare = 0.05;
/**
 * At or above this share, on average over the last `recentSamples` or in one sample, it is busy
 * again (over the whole window, moderate load would take half of it to count). A heartbeat round
 * of 10,000 idle tails peaks at ~0.35 in one second and ~0.12 over five.
 */
const busyRecentShare = 0.15;
const busySampleShare = 0.5;
const recentSamples = 5;

/**
 * The decision, apart from the clock and from V8: fed one busy share per sample, it says when
 * memory saver mode goes on (a whole window of quiet) and off (busy again).
 */
export class IdleHeapTrimmer {
  private readonly window: number[] = [];
  private readonly windowSize: number;
  saving = false;

  constructor(
    opts: IdleHeapTrimOptions,
    private readonly setSaving: (on: boolean) => void,
  ) {
    this.windowSize = Math.max(1, Math.ceil(opts.idleAfterMs / opts.sampleMs));
  }

  /** One sample: the share of the last interval the event loop was busy (0..1). */
  sample(busyShare: number): void {
    this.window.push(busyShare);
    if (this.window.length > this.windowSize) this.window.shift();
    if (this.saving && (busyShare >= busySampleShare || this.meanBusyShare(recentSamples) >= busyRecentShare)) {
      this.saving = false;
      this.setSaving(false);
      // The quiet counts again from here: a burst's heap is not trimmed the moment it ends.
      this.window.length = 0;
    } else if (!this.saving && this.window.length === this.windowSize && this.meanBusyShare() < quietShare) {
      this.saving = true;
      this.setSaving(true);
    }
  }

  /** The mean busy share over the window, or over its last `samples`. */
  meanBusyShare(samples = this.windowSize): number {
    const recent = this.window.slice(-samples);
    return recent.length === 0 ? 0 : recent.reduce((a, b) => a + b, 0) / recent.length;
  }
}

/** Samples this process's event loop until `signal` aborts, and leaves memory saver mode off. */
export function trimHeapWhenIdle(opts: IdleHeapTrimOptions, log: pino.Logger, signal: AbortSignal, metrics?: Metrics): void {
  if (opts.idleAfterMs <= 0 || signal.aborted) return;
  const rssMb = () => Math.round(process.memoryUsage.rss() / 1e6);
  const trimmer = new IdleHeapTrimmer(opts, (on) => {
    setFlagsFromString(on ? "--memory-saver-mode" : "--no-memory-saver-mode");
    metrics?.heapMemorySaver.set(on ? 1 : 0);
    if (on) {
      metrics?.heapTrims.inc();
      log.info({ rssMb: rssMb(), busyShare: round(trimmer.meanBusyShare()) }, "heap: quiet, V8 memory saver mode on (its next GC gives memory back)");
    } else log.info({ rssMb: rssMb() }, "heap: busy again, V8 memory saver mode off");
  });
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    trimmer.sample(performance.eventLoopUtilization(now, last).utilization);
    last = now;
  }, opts.sampleMs);
  timer.unref();
  signal.addEventListener(
    "abort",
    () => {
      clearInterval(timer);
      if (trimmer.saving) setFlagsFromString("--no-memory-saver-mode");
      metrics?.heapMemorySaver.set(0);
    },
    { once: true },
  );
}

function round(share: number): number {
  return Math.round(share * 1000) / 1000;
}
