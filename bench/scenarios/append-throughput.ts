// Closed-loop append throughput: `appenders` callers, each appending its next
// batch as soon as the previous one returns, spread over `threads` threads,
// until `events` are appended or `maxSeconds` pass (after a short warm-up).
import { Connections } from "../connections.js";
import { nowMs } from "../clock.js";
import { benchEventType, kibPayload } from "../payloads.js";
import { distribution } from "../percentiles.js";
import type { Goal, ScenarioResult } from "../result.js";

export interface AppendThroughputParams {
  name: string;
  batchSize: number;
  appenders: number;
  threads: number;
  connections: number;
  events: number;
  maxSeconds: number;
  warmupEvents: number;
  goal?: Goal;
}

export async function appendThroughput(baseUrl: string, p: AppendThroughputParams): Promise<ScenarioResult> {
  const conns = new Connections(baseUrl, p.connections);
  const failures: string[] = [];
  try {
    const threadIds = await conns.createThreads(p.threads);
    const appended = new Map(threadIds.map((id) => [id, 0]));
    const batch = Array.from({ length: p.batchSize }, () => ({ type: benchEventType, payload: kibPayload }));
    let errors = 0;

    /** Runs every appender until `budget` events are taken or the deadline passes; returns call latencies. */
    const run = async (budget: number, deadline: number): Promise<number[]> => {
      const callMs: number[] = [];
      let taken = 0;
      await Promise.all(
        Array.from({ length: p.appenders }, async (_, a) => {
          const client = conns.events(a);
          const threadId = threadIds[a % threadIds.length];
          while (taken < budget && nowMs() < deadline) {
            taken += p.batchSize;
            const started = nowMs();
            try {
              await client.appendEvents({ threadId, events: batch });
              callMs.push(nowMs() - started);
              appended.set(threadId, appended.get(threadId)! + p.batchSize);
            } catch (err) {
              if (errors++ < 5) failures.push(`${p.name}: append failed: ${String(err)}`);
            }
          }
        }),
      );
      return callMs;
    };

    await run(p.warmupEvents, nowMs() + 10_000);
    const started = nowMs();
    const callMs = await run(p.events, started + p.maxSeconds * 1000);
    const seconds = (nowMs() - started) / 1000;
    const calls = distribution(callMs);
    if (errors > 5) failures.push(`${p.name}: ${errors} appends failed in all`);

    // Every acknowledged event is in the log, and nothing else.
    for (const threadId of threadIds) {
      const { thread } = await conns.turns.getThread({ threadId });
      const expected = 1 + appended.get(threadId)!;
      if (Number(thread!.lastSeq) !== expected) {
        failures.push(`${p.name}: thread ${threadId} ends at seq ${thread!.lastSeq}, expected ${expected}`);
      }
    }

    return {
      measurements: [
        { scenario: p.name, metric: "events/s", value: (calls.count * p.batchSize) / seconds, unit: "events/s", goal: p.goal },
        { scenario: p.name, metric: "events appended", value: calls.count * p.batchSize, unit: "count" },
        { scenario: p.name, metric: "call p50", value: calls.p50, unit: "ms" },
        { scenario: p.name, metric: "call p99", value: calls.p99, unit: "ms" },
      ],
      failures,
    };
  } finally {
    conns.close();
  }
}
