// Warm replay: a thread of `events` events (seeded through the hot tier, moved
// to Postgres by the server's own persister, the hot window keeping the last
// 1,000), read from seq 0 over gRPC until caught_up.
import { openInProcess } from "../in-process-tiers.js";
import { type LongThread, persistedInProcess, persistedOverRpc, seedInProcess, seedOverRpc, waitPersisted } from "../long-thread.js";
import type { PayloadSource } from "../payloads.js";
import { replayFromStart } from "../replay-client.js";
import { layoutRow, type Goal, type Measurement, type ScenarioResult } from "../result.js";
import type { ServerUnderTest } from "../server-under-test.js";

export interface ReplayParams {
  name: string;
  server: ServerUnderTest;
  logLevel: string;
  events: number;
  payload: PayloadSource;
  persistTimeoutSeconds: number;
  goal?: Goal;
}

export async function warmReplay(p: ReplayParams): Promise<ScenarioResult> {
  const { server } = p;
  const failures: string[] = [];
  const notes: string[] = [];
  let thread: LongThread;
  let persisted: boolean;
  if (server.tier === "redis") {
    // The server's tiers, opened here too: same key prefix, same schema.
    const t = await openInProcess(server.tiers, p.logLevel);
    try {
      thread = await seedInProcess(t, p.events, p.payload);
      persisted = await waitPersisted(persistedInProcess(t, thread.threadId), thread.lastSeq, p.persistTimeoutSeconds * 1000);
    } finally {
      await t.close(false);
    }
  } else {
    thread = await seedOverRpc(server.baseUrl, p.events, p.payload);
    persisted = await waitPersisted(persistedOverRpc(server.baseUrl, thread.threadId), thread.lastSeq, p.persistTimeoutSeconds * 1000);
  }
  failures.push(...thread.problems.map((f) => `${p.name}: seeding: ${f}`));
  if (!persisted) notes.push(`${p.name}: the server's persister had not persisted the thread after ${p.persistTimeoutSeconds} s; replaying anyway`);

  const replayed = await replayFromStart(server.baseUrl, thread.threadId, thread.lastSeq, 120_000);
  failures.push(...replayed.problems.map((f) => `${p.name}: ${f}`));
  return {
    measurements: [
      layoutRow(p.name, "server child"),
      ...replayRows(p.name, replayed, p.goal),
      { scenario: p.name, metric: "seed events/s", value: (thread.lastSeq - 1) / thread.seedSeconds, unit: "events/s" },
    ],
    failures,
    notes,
  };
}

export function replayRows(
  name: string,
  r: Awaited<ReturnType<typeof replayFromStart>>,
  goal?: Goal,
  prefix = "",
): Measurement[] {
  return [
    { scenario: name, metric: `${prefix}events/s delivered`, value: r.events / r.seconds, unit: "events/s", goal },
    { scenario: name, metric: `${prefix}payload MB/s`, value: r.payloadBytes / 1e6 / r.seconds, unit: "MB/s" },
    { scenario: name, metric: `${prefix}events delivered`, value: r.events, unit: "count" },
    { scenario: name, metric: `${prefix}first event after`, value: r.firstEventMs, unit: "ms" },
    { scenario: name, metric: `${prefix}caught_up after`, value: r.seconds * 1000, unit: "ms" },
  ];
}
