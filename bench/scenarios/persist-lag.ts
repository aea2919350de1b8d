// Persist lag at a steady rate: a Persister runs in this process while
// batches are appended open-loop through the hot tier (appendsPerSecond ×
// batch events, round-robin over the threads). Each event's lag is the time
// the Persister reported its batch committed (onCommitted) minus its
// createdAt (Redis TIME at append; the same machine's clock as Date.now()).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { defaultTenant } from "../../server/auth.js";
import { nowMs, sleep } from "../clock.js";
import { openInProcess, startPersister } from "../in-process-tiers.js";
import { benchEventType, type PayloadSource } from "../payloads.js";
import { distribution } from "../percentiles.js";
import { layoutRow, warningsNote, type Goal, type ScenarioResult } from "../result.js";
import { appendedRange, benchEvent, checkRanges, createThreads } from "../seed.js";
import { freshTierEnv, type Services, type Tier } from "../tier-env.js";
import { verifyPersisted } from "../warm-checks.js";

export interface PersistLagParams {
  name: string;
  tier: Tier;
  services: Services;
  logLevel: string;
  threads: number;
  appendsPerSecond: number;
  batch: number;
  seconds: number;
  payload: PayloadSource;
  p99Goal?: Goal;
}

/**
 * Appends still unanswered beyond this many seconds' worth mean the hot tier
 * cannot keep up: stop sending. Generous, because the appender shares this
 * event loop with the Persister, whose SQL building blocks it for a while.
 */
const maxInFlightSeconds = 2;
const drainTimeoutMs = 15_000;

export async function persistLag(p: PersistLagParams): Promise<ScenarioResult> {
  const notes: string[] = [];
  const failures: string[] = [];
  const t = await openInProcess(freshTierEnv(p.tier, p.services), p.logLevel);
  // Tier memory persists into embedded PGlite, not Postgres: say so on the rows.
  const into = p.tier === "memory" ? " (PGlite)" : "";
  try {
    const threadIds = await createThreads(t.tiers.hot, p.threads);
    const ours = new Set(threadIds);
    const lags: number[] = [];
    const batchSizes: number[] = [];
    let committed = 0;
    const persister = startPersister(t, (events) => {
      const at = Date.now();
      batchSizes.push(events.length);
      for (const e of events) {
        if (!ours.has(e.threadId)) continue;
        committed++;
        if (e.type === benchEventType) lags.push(at - e.createdAt);
      }
    });
    try {
      // Warm-up: the persister has taken its partitions once the thread.created events are in.
      const warmDeadline = nowMs() + 15_000;
      while (committed < p.threads && nowMs() < warmDeadline) await sleep(10);
      lags.length = 0;

      const loopDelay = monitorEventLoopDelay({ resolution: 10 });
      loopDelay.enable();
      const ranges = new Map<string, [number, number][]>(threadIds.map((id) => [id, []]));
      const total = Math.round(p.appendsPerSecond * p.seconds);
      const acks: Promise<void>[] = [];
      let [k, inFlight, failed] = [0, 0, 0];
      const t0 = nowMs() + 5;
      while (k < total && inFlight <= p.appendsPerSecond * maxInFlightSeconds) {
        const wait = t0 + (k * 1000) / p.appendsPerSecond - nowMs();
        if (wait > 0) {
          await sleep(wait);
          continue;
        }
        const threadId = threadIds[k % threadIds.length];
        const events = Array.from({ length: p.batch }, () => benchEvent(p.payload));
        inFlight++;
        k++;
        acks.push(
          t.tiers.hot.append({ tenantId: defaultTenant, threadId, events }).then(
            (res) => void ranges.get(threadId)!.push(appendedRange(res)),
            (err) => {
              if (failed++ < 3) notes.push(`${p.name}: append failed: ${String(err)}`);
            },
          ).finally(() => inFlight--),
        );
      }
      const sendSeconds = (nowMs() - t0) / 1000;
      loopDelay.disable();
      if (k < total) notes.push(`${p.name}: appends fell behind (${inFlight} in flight) ${sendSeconds.toFixed(1)} s in; sent ${k} of ${total}`);
      await Promise.all(acks);
      const appended = (k - failed) * p.batch;
      const want = appended + p.threads;
      const drainDeadline = nowMs() + drainTimeoutMs;
      while (committed < want && nowMs() < drainDeadline) await sleep(10);
      if (committed < want) notes.push(`${p.name}: ${want - committed} events not persisted ${drainTimeoutMs} ms after the last append`);

      const checked = checkRanges(ranges);
      failures.push(...checked.problems.map((f) => `${p.name}: ${f}`));
      if (committed >= want && failed === 0) failures.push(...(await verifyPersisted(t.db, checked.lastSeq)).map((f) => `${p.name}: ${f}`));
      notes.push(...warningsNote(`${p.name}: the in-process roles`, t.warnings));
      const d = distribution(lags);
      const meanBatch = batchSizes.reduce((a, b) => a + b, 0) / Math.max(1, batchSizes.length);
      return {
        measurements: [
          layoutRow(p.name, "in-process"),
          { scenario: p.name, metric: `lag p50${into}`, value: d.p50, unit: "ms" },
          { scenario: p.name, metric: `lag p99${into}`, value: d.p99, unit: "ms", goal: p.p99Goal },
          { scenario: p.name, metric: `lag max${into}`, value: d.max, unit: "ms" },
          { scenario: p.name, metric: "offered rate", value: (k * p.batch) / sendSeconds, unit: "events/s" },
          { scenario: p.name, metric: "events persisted", value: d.count, unit: "count" },
          { scenario: p.name, metric: "mean batch (events)", value: meanBatch, unit: "count" },
          // The appender and the Persister share this process: how long its event loop stalled while sending.
          { scenario: p.name, metric: "bench event loop delay p99", value: loopDelay.percentile(99) / 1e6, unit: "ms" },
          { scenario: p.name, metric: "bench event loop delay max", value: loopDelay.max / 1e6, unit: "ms" },
        ],
        failures,
        notes,
      };
    } finally {
      await persister.stop();
    }
  } finally {
    await t.close(true);
  }
}
