// One caller appending single 1 KiB events one after another (concurrency
// 1): the latency of one AppendEvents round trip through the server and the
// hot tier, and the server's CPU per call over the measured appends. The
// caller is the raw node:http2 client (a request encoded once: what the
// server alone takes) or Connect's client (what a typical client sees).
import { Connections } from "../connections.js";
import { nowMs } from "../clock.js";
import { benchEventType, kibPayload } from "../payloads.js";
import { distribution } from "../percentiles.js";
import { startCpuMeter } from "../process-stats.js";
import { cpuRows, type Goal, type ScenarioResult } from "../result.js";
import type { ServerUnderTest } from "../server-under-test.js";
import { appendFrame, wireAppend } from "../wire-append-client.js";
import { WireSessions } from "../wire-sessions.js";

export interface AppendLatencyParams {
  name: string;
  client: "node:http2" | "Connect";
  warmup: number;
  appends: number;
  p50Goal?: Goal;
}

export async function appendLatency(server: ServerUnderTest, p: AppendLatencyParams): Promise<ScenarioResult> {
  const conns = new Connections(server.baseUrl, 1);
  const sessions = new WireSessions(server.baseUrl, 1);
  const label = `${p.client} client`;
  try {
    const [threadId] = await conns.createThreads(1);
    const client = conns.events(0);
    const events = [{ type: benchEventType, payload: kibPayload }];
    const frame = appendFrame(threadId, 1, kibPayload);
    const append = p.client === "Connect" ? () => client.appendEvents({ threadId, events }) : () => wireAppend(sessions, 0, frame);
    for (let i = 0; i < p.warmup; i++) await append();
    const samples: number[] = [];
    const meter = startCpuMeter(server.pid);
    for (let i = 0; i < p.appends; i++) {
      const started = nowMs();
      await append();
      samples.push(nowMs() - started);
    }
    const spent = meter();
    const d = distribution(samples);
    return {
      measurements: [
        { scenario: p.name, metric: `${label}: p50`, value: d.p50, unit: "ms", goal: p.p50Goal },
        { scenario: p.name, metric: `${label}: p99`, value: d.p99, unit: "ms" },
        { scenario: p.name, metric: `${label}: max`, value: d.max, unit: "ms" },
        ...cpuRows(p.name, label, spent, { calls: p.appends }, "bench process"),
      ],
      failures: [],
      notes: sessions.errors.map((e) => `${p.name}: ${e}`),
    };
  } finally {
    sessions.close();
    conns.close();
  }
}
