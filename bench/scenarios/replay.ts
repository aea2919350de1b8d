// Warm replay: a thread of `events` events (seeded through the hot tier, moved
// to Postgres by the server's persister, the hot window keeping the last
// 1,000), read from seq 0 over gRPC until caught_up, with the server child's
// CPU per event delivered over each read.
import { openInProcess } from "../in-process-tiers.js";
import { type LongThread, persistedInProcess, persistedOverRpc, seedInProcess, seedOverRpc, waitPersisted } from "../long-thread.js";
import type { PayloadSource } from "../payloads.js";
import { type Replayed, type ReplayClient, replayFromStart } from "../replay-client.js";
import { wireReplayFromStart } from "../wire-replay-client.js";
import { startCpuMeter } from "../process-stats.js";
import { childLayout, cpuRows, layoutRow, type Goal, type Measurement, type ScenarioResult } from "../result.js";
import { isFloor } from "../tier-env.js";
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
    // A floor keeps what it is sent: nothing to persist.
    persisted =
      isFloor(server.tier) ||
      (await waitPersisted(persistedOverRpc(server.baseUrl, thread.threadId), thread.lastSeq, p.persistTimeoutSeconds * 1000));
  }
  failures.push(...thread.problems.map((f) => `${p.name}: seeding: ${f}`));
  if (!persisted) notes.push(`${p.name}: the server's persister had not persisted the thread after ${p.persistTimeoutSeconds} s; replaying anyway`);

  const rows: Measurement[] = [];
  for (const client of replayClients) {
    rows.push(...(await measuredReplay(p.name, server, client, thread, p.goal, client.name, failures)));
  }
  return {
    measurements: [
      layoutRow(p.name, childLayout(server.tier)),
      ...rows,
      { scenario: p.name, metric: "seed events/s", value: (thread.lastSeq - 1) / thread.seedSeconds, unit: "events/s" },
    ],
    failures,
    notes,
  };
}

/** max_events_per_response of the batched replays. */
const batchSize = 500;

/**
 * Each replay is read four times: by two clients, with one event a response
 * (the default) and with batches (max_events_per_response). Connect's client
 * decodes every event fully, as an application would, and costs about 15 µs
 * an event in this process; the wire client reads only each event's seq, so
 * its figure is what the server delivers (see bench/wire-replay-client.ts).
 */
export const replayClients: { name: string; read: ReplayClient; perResponse: number }[] = [
  { name: "Connect client", read: replayFromStart, perResponse: 0 },
  { name: "wire client", read: wireReplayFromStart, perResponse: 0 },
  { name: `Connect client, batches of ${batchSize}`, read: replayFromStart, perResponse: batchSize },
  { name: `wire client, batches of ${batchSize}`, read: wireReplayFromStart, perResponse: batchSize },
];

/** One read of the thread by `client`, its rows with the server's CPU per event delivered over the read. */
export async function measuredReplay(
  name: string,
  server: Pick<ServerUnderTest, "baseUrl" | "pid">,
  client: (typeof replayClients)[number],
  thread: Pick<LongThread, "threadId" | "lastSeq">,
  goal: Goal | undefined,
  label: string,
  failures: string[],
): Promise<Measurement[]> {
  const meter = startCpuMeter(server.pid);
  const replayed = await client.read(server.baseUrl, thread.threadId, thread.lastSeq, 300_000, client.perResponse);
  const spent = meter();
  failures.push(...replayed.problems.map((f) => `${name}: ${client.name}: ${f}`));
  return [...replayRows(name, replayed, goal, `${label}: `), ...cpuRows(name, label, spent, { delivered: replayed.events }, "bench process")];
}

export function replayRows(
  name: string,
  r: Replayed,
  goal?: Goal,
  prefix = "",
): Measurement[] {
  return [
    { scenario: name, metric: `${prefix}events/s delivered`, value: r.events / r.seconds, unit: "events/s", goal },
    { scenario: name, metric: `${prefix}${r.bytesLabel} MB/s`, value: r.bytes / 1e6 / r.seconds, unit: "MB/s" },
    { scenario: name, metric: `${prefix}events delivered`, value: r.events, unit: "count" },
    { scenario: name, metric: `${prefix}first event after`, value: r.firstEventMs, unit: "ms" },
    { scenario: name, metric: `${prefix}caught_up after`, value: r.seconds * 1000, unit: "ms" },
  ];
}
