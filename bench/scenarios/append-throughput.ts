// Closed-loop append throughput through Connect's client (the typical
// client's figure; bench/scenarios/append-load.ts drives the server with a
// far cheaper generator): `appenders` callers, each appending its next
// batch as soon as the previous one returns, spread over `threads` threads
// (several appenders share a thread), until `events` are appended or
// `maxSeconds` pass, after `warmupSeconds` of the same load (not counted).
import { Connections } from "../connections.js";
import { nowMs } from "../clock.js";
import { benchEventType, kibPayload } from "../payloads.js";
import { distribution } from "../percentiles.js";
import { startCpuMeter } from "../process-stats.js";
import { cpuRows, type Goal, type ScenarioResult } from "../result.js";
import type { ServerUnderTest } from "../server-under-test.js";

export interface AppendThroughputParams {
  name: string;
  batchSize: number;
  appenders: number;
  threads: number;
  connections: number;
  events: number;
  maxSeconds: number;
  warmupSeconds: number;
  goal?: Goal;
}

/** The seqs one acknowledged append got. */
type SeqRange = [first: number, last: number];

export async function appendThroughput(server: ServerUnderTest, p: AppendThroughputParams): Promise<ScenarioResult> {
  const conns = new Connections(server.baseUrl, p.connections);
  const label = `Connect client ${p.appenders} callers`;
  const notes: string[] = [];
  try {
    const threadIds = await conns.createThreads(p.threads);
    const acked = new Map<string, SeqRange[]>(threadIds.map((id) => [id, []]));
    const batch = Array.from({ length: p.batchSize }, () => ({ type: benchEventType, payload: kibPayload }));
    let failedCalls = 0;

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
              const res = await client.appendEvents({ threadId, events: batch });
              callMs.push(nowMs() - started);
              acked.get(threadId)!.push([Number(res.firstSeq), Number(res.lastSeq)]);
            } catch (err) {
              if (failedCalls++ < 3) notes.push(`${p.name}: append failed: ${String(err)}`);
            }
          }
        }),
      );
      return callMs;
    };

    await run(Number.POSITIVE_INFINITY, nowMs() + p.warmupSeconds * 1000);
    const started = nowMs();
    const meter = startCpuMeter(server.pid);
    const callMs = await run(p.events, started + p.maxSeconds * 1000);
    const spent = meter();
    const seconds = (nowMs() - started) / 1000;
    const calls = distribution(callMs);
    if (failedCalls > 0) notes.push(`${p.name}: ${failedCalls} appends failed`);

    return {
      measurements: [
        { scenario: p.name, metric: `${label}: events/s`, value: (calls.count * p.batchSize) / seconds, unit: "events/s", goal: p.goal },
        { scenario: p.name, metric: `${label}: events appended`, value: calls.count * p.batchSize, unit: "count" },
        { scenario: p.name, metric: `${label}: call p50`, value: calls.p50, unit: "ms" },
        { scenario: p.name, metric: `${label}: call p99`, value: calls.p99, unit: "ms" },
        // A failed call may have appended: the calls that returned are what the CPU is divided by.
        ...cpuRows(p.name, label, spent, { calls: calls.count, appended: calls.count * p.batchSize }, "bench process"),
      ],
      failures: await verifySeqs(conns, p.name, acked, failedCalls),
      notes,
    };
  } finally {
    conns.close();
  }
}

/**
 * Concurrent appends to one thread got disjoint, gapless seq ranges after
 * `thread.created` (seq 1), and the thread ends where the last one does.
 * A failed call may still have been written: then only overlaps count.
 */
async function verifySeqs(conns: Connections, name: string, acked: Map<string, SeqRange[]>, failedCalls: number) {
  const failures: string[] = [];
  for (const [threadId, ranges] of acked) {
    ranges.sort((a, b) => a[0] - b[0]);
    let next = 2;
    for (const [first, last] of ranges) {
      if (first < next) failures.push(`${name}: thread ${threadId}: seqs ${first}-${last} given twice`);
      else if (first > next && failedCalls === 0) failures.push(`${name}: thread ${threadId}: seqs ${next}-${first - 1} missing`);
      next = Math.max(next, last + 1);
    }
    const { thread } = await conns.turns.getThread({ threadId });
    const lastSeq = Number(thread!.lastSeq);
    if (lastSeq < next - 1 || (failedCalls === 0 && lastSeq !== next - 1)) {
      failures.push(`${name}: thread ${threadId} ends at seq ${lastSeq}, acknowledged appends end at ${next - 1}`);
    }
  }
  return failures;
}
