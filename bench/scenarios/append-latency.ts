// One caller appending single events one after another: the latency of one
// AppendEvents round trip through the server and the hot tier.
import { Connections } from "../connections.js";
import { nowMs } from "../clock.js";
import { benchEventType, kibPayload } from "../payloads.js";
import { distribution } from "../percentiles.js";
import type { Goal, ScenarioResult } from "../result.js";

export interface AppendLatencyParams {
  name: string;
  warmup: number;
  appends: number;
  p50Goal?: Goal;
}

export async function appendLatency(baseUrl: string, p: AppendLatencyParams): Promise<ScenarioResult> {
  const conns = new Connections(baseUrl, 1);
  try {
    const [threadId] = await conns.createThreads(1);
    const client = conns.events(0);
    const events = [{ type: benchEventType, payload: kibPayload }];
    for (let i = 0; i < p.warmup; i++) await client.appendEvents({ threadId, events });
    const samples: number[] = [];
    for (let i = 0; i < p.appends; i++) {
      const started = nowMs();
      await client.appendEvents({ threadId, events });
      samples.push(nowMs() - started);
    }
    const d = distribution(samples);
    return {
      measurements: [
        { scenario: p.name, metric: "p50", value: d.p50, unit: "ms", goal: p.p50Goal },
        { scenario: p.name, metric: "p99", value: d.p99, unit: "ms" },
        { scenario: p.name, metric: "max", value: d.max, unit: "ms" },
      ],
      failures: [],
      notes: [],
    };
  } finally {
    conns.close();
  }
}
