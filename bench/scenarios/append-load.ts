// Append throughput from a load generator cheaper than the server: requests
// encoded once, `connections` HTTP/2 connections × `streams` concurrent
// streams, each connection appending to a thread of its own, `calls` calls
// after `warmupCalls` unmeasured ones. The generator is h2load when it is
// installed, else the raw node:http2 one (bench/wire-append-client.ts). The
// server child's CPU is read before and after the measured calls only.
// Afterwards each thread must hold exactly what was sent to it, gapless.
import { Connections } from "../connections.js";
import { distribution } from "../percentiles.js";
import { h2loadVersion, runH2load } from "../h2load.js";
import { kibPayload } from "../payloads.js";
import { startCpuMeter } from "../process-stats.js";
import { cpuRows, type Goal, type ScenarioResult } from "../result.js";
import type { ServerUnderTest } from "../server-under-test.js";
import { appendFrame, appendPath, closedLoop, type LoadRun } from "../wire-append-client.js";
import { wireReplayFromStart } from "../wire-replay-client.js";
import { WireSessions } from "../wire-sessions.js";

export interface AppendLoadParams {
  name: string;
  batchSize: number;
  connections: number;
  streams: number;
  calls: number;
  warmupCalls: number;
  /** On the measured events/s. */
  goal?: Goal;
}

/** Which generator the append loads use in this run: h2load if installed. */
export function appendGenerator(): "h2load" | "node:http2" {
  return h2loadVersion() ? "h2load" : "node:http2";
}

export async function appendLoad(server: ServerUnderTest, p: AppendLoadParams): Promise<ScenarioResult> {
  const generator = appendGenerator();
  const label = `${generator} ${p.connections}×${p.streams}`;
  const conns = new Connections(server.baseUrl, 1);
  const sessions = new WireSessions(server.baseUrl, p.connections);
  const failures: string[] = [];
  const notes: string[] = [];
  try {
    const threadIds = await conns.createThreads(p.connections);
    const frames = threadIds.map((threadId) => appendFrame(threadId, p.batchSize, kibPayload));
    const perConnection = (calls: number) => Math.ceil(calls / p.connections);
    const load = (calls: number): Promise<LoadRun> =>
      generator === "h2load"
        ? runH2load({ baseUrl: server.baseUrl, path: appendPath, frames, callsPerConnection: perConnection(calls), streams: p.streams })
        : closedLoop({ sessions, streams: p.streams, callsPerConnection: perConnection(calls), frame: (c) => frames[c] });

    const warm = await load(p.warmupCalls);
    const meter = startCpuMeter(server.pid);
    const run = await load(p.calls);
    const spent = meter();
    const calls = perConnection(p.calls) * p.connections;
    const sent = (perConnection(p.warmupCalls) + perConnection(p.calls)) * p.batchSize;

    // What the threads hold is what the server appended: h2load cannot see a gRPC status.
    let appended = 0;
    for (const threadId of threadIds) {
      const lastSeq = Number((await conns.turns.getThread({ threadId })).thread!.lastSeq);
      appended += lastSeq - 1;
      if (lastSeq - 1 > sent) failures.push(`${p.name}: thread ${threadId} holds ${lastSeq - 1} events, ${sent} were sent to it`);
      const replayed = await wireReplayFromStart(server.baseUrl, threadId, lastSeq, 60_000, 1000);
      failures.push(...replayed.problems.map((f) => `${p.name}: reading thread ${threadId} back: ${f}`));
    }
    const failedCalls = warm.failed + run.failed;
    const missing = sent * p.connections - appended;
    if (failedCalls > 0 || missing > 0) {
      notes.push(`${p.name}: ${failedCalls} calls failed, ${missing} events sent were not appended: ${[...warm.errors, ...run.errors].slice(0, 3).join("; ")}`);
    }
    notes.push(...sessions.errors.map((e) => `${p.name}: ${e}`));
    const d = distribution(run.latenciesMs);
    const events = calls * p.batchSize;
    return {
      measurements: [
        { scenario: p.name, metric: `${label}: events/s`, value: events / run.seconds, unit: "events/s", goal: p.goal },
        { scenario: p.name, metric: `${label}: calls`, value: calls, unit: "count" },
        { scenario: p.name, metric: `${label}: call p50`, value: d.p50, unit: "ms" },
        { scenario: p.name, metric: `${label}: call p99`, value: d.p99, unit: "ms" },
        ...cpuRows(p.name, label, spent, { calls, appended: events }, generator === "h2load" ? "h2load" : "bench process"),
      ],
      failures,
      notes,
    };
  } finally {
    sessions.close();
    conns.close();
  }
}
