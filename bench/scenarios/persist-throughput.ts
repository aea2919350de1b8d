// Persister throughput: a backlog of `events` (seeded straight into the hot
// tier while no persister runs), then one Persister (as server/roles.ts builds
// it) started in this process; timed until threads.last_seq sums to the
// backlog, i.e. until every event is committed in Postgres.
import { nowMs } from "../clock.js";
import type { PayloadSource } from "../payloads.js";
import { openInProcess, startPersister } from "../in-process-tiers.js";
import { layoutRow, warningsNote, type Goal, type ScenarioResult } from "../result.js";
import { createThreads, seedThroughHot } from "../seed.js";
import { freshTierEnv, type Services, type Tier } from "../tier-env.js";
import { persistedEvents, verifyPersisted, waitFor } from "../warm-checks.js";

export interface PersistThroughputParams {
  name: string;
  tier: Tier;
  services: Services;
  logLevel: string;
  events: number;
  threads: number;
  /** Events per hot-tier append while seeding, and appends in flight. */
  seedBatch: number;
  seedConcurrency: number;
  payload: PayloadSource;
  timeoutSeconds: number;
  goal?: Goal;
}

export async function persistThroughput(p: PersistThroughputParams): Promise<ScenarioResult> {
  const notes: string[] = [];
  const failures: string[] = [];
  const t = await openInProcess(freshTierEnv(p.tier, p.services), p.logLevel);
  // Tier memory persists into embedded PGlite, not Postgres: say so on the row.
  const into = p.tier === "memory" ? " into PGlite" : "";
  try {
    const threadIds = await createThreads(t.tiers.hot, p.threads);
    const seeded = await seedThroughHot(t.tiers.hot, {
      threadIds,
      events: p.events,
      batch: p.seedBatch,
      concurrency: p.seedConcurrency,
      payload: p.payload,
    });
    failures.push(...seeded.problems.map((f) => `${p.name}: seeding: ${f}`));
    // The backlog includes each thread's thread.created.
    const backlog = p.events + p.threads;

    const batches: number[] = [];
    const started = nowMs();
    const persister = startPersister(t, (events) => batches.push(events.length));
    let doneAt: number | undefined;
    try {
      doneAt = await waitFor(() => persistedEvents(t.db, threadIds), backlog, p.timeoutSeconds * 1000, 20);
    } finally {
      await persister.stop();
    }
    const seconds = ((doneAt ?? nowMs()) - started) / 1000;
    const persisted = await persistedEvents(t.db, threadIds);
    if (doneAt === undefined) {
      notes.push(`${p.name}: the persister had committed ${persisted} of ${backlog} events after ${p.timeoutSeconds} s; stopped waiting`);
    } else {
      failures.push(...(await verifyPersisted(t.db, seeded.lastSeq)).map((f) => `${p.name}: ${f}`));
    }
    notes.push(...warningsNote(`${p.name}: the in-process roles`, t.warnings));
    return {
      measurements: [
        layoutRow(p.name, "in-process"),
        { scenario: p.name, metric: `events/s${into}`, value: persisted / seconds, unit: "events/s", goal: p.goal },
        { scenario: p.name, metric: "events persisted", value: persisted, unit: "count" },
        { scenario: p.name, metric: "time to persist all", value: seconds * 1000, unit: "ms" },
        { scenario: p.name, metric: "batches", value: batches.length, unit: "count" },
        { scenario: p.name, metric: "largest batch (events)", value: Math.max(0, ...batches), unit: "count" },
        { scenario: p.name, metric: "seed via hot.append", value: seeded.events / seeded.seconds, unit: "events/s" },
      ],
      failures,
      notes,
    };
  } finally {
    await t.close(true);
  }
}
