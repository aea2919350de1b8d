// Live delivery: `threads × tailersPerThread` followed tails, while single
// events are appended open-loop at `ratePerSecond` (round-robin over the
// threads). Each payload carries its send time; each tailer records
// receive − send. Every tailer must see every event once, in seq order.
import { Connections } from "../connections.js";
import { nowMs, sleep } from "../clock.js";
import { benchEventType } from "../payloads.js";
import { distribution } from "../percentiles.js";
import type { Goal, ScenarioResult } from "../result.js";

export interface TailLatencyParams {
  name: string;
  threads: number;
  tailersPerThread: number;
  tailConnections: number;
  appendConnections: number;
  ratePerSecond: number;
  seconds: number;
  p99Goal?: Goal;
}

/** What one tailer saw. */
interface Tailer {
  threadId: string;
  lastSeq: number;
  ticks: number;
  problems: string[];
}

const setupTimeoutMs = 30_000;
const drainTimeoutMs = 10_000;

export async function tailLatency(baseUrl: string, p: TailLatencyParams): Promise<ScenarioResult> {
  const tailConns = new Connections(baseUrl, p.tailConnections);
  const appendConns = new Connections(baseUrl, p.appendConnections);
  const stop = new AbortController();
  const failures: string[] = [];
  const latencies: number[] = [];
  try {
    const threadIds = await appendConns.createThreads(p.threads);
    const tailers: Tailer[] = [];
    const caughtUp: Promise<void>[] = [];
    const running: Promise<void>[] = [];
    for (let i = 0; i < p.threads * p.tailersPerThread; i++) {
      const tailer: Tailer = { threadId: threadIds[i % p.threads], lastSeq: 0, ticks: 0, problems: [] };
      let markCaughtUp!: () => void;
      caughtUp.push(new Promise<void>((resolve) => (markCaughtUp = resolve)));
      tailers.push(tailer);
      running.push(follow(tailConns, i, tailer, latencies, markCaughtUp, stop.signal));
    }
    if (!(await within(Promise.all(caughtUp), setupTimeoutMs))) {
      failures.push(`${p.name}: tailers not caught up after ${setupTimeoutMs} ms`);
    }

    // Open loop: event k is due at t0 + k/rate whatever the previous calls do.
    const total = Math.round(p.ratePerSecond * p.seconds);
    const sent = new Map(threadIds.map((id) => [id, 0]));
    const lastSeq = new Map(threadIds.map((id) => [id, 1]));
    const acks: Promise<void>[] = [];
    let errors = 0;
    const t0 = nowMs() + 5;
    let k = 0;
    while (k < total) {
      const wait = t0 + (k * 1000) / p.ratePerSecond - nowMs();
      if (wait > 0) {
        await sleep(wait);
        continue;
      }
      for (; k < total && t0 + (k * 1000) / p.ratePerSecond <= nowMs(); k++) {
        const threadId = threadIds[k % p.threads];
        const events = [{ type: benchEventType, payload: { sentAt: nowMs(), k } }];
        acks.push(
          appendConns.events(k).appendEvents({ threadId, events }).then(
            (res) => {
              sent.set(threadId, sent.get(threadId)! + 1);
              lastSeq.set(threadId, Math.max(lastSeq.get(threadId)!, Number(res.lastSeq)));
            },
            (err) => {
              if (errors++ < 5) failures.push(`${p.name}: append failed: ${String(err)}`);
            },
          ),
        );
      }
    }
    const sendSeconds = (nowMs() - t0) / 1000;
    await Promise.all(acks);
    if (errors > 5) failures.push(`${p.name}: ${errors} appends failed in all`);

    const drained = () => tailers.every((t) => t.lastSeq >= lastSeq.get(t.threadId)!);
    const drainDeadline = nowMs() + drainTimeoutMs;
    while (!drained() && nowMs() < drainDeadline) await sleep(10);
    stop.abort();
    await Promise.all(running);

    failures.push(...verify(p.name, tailers, sent, lastSeq));
    const d = distribution(latencies);
    return {
      measurements: [
        { scenario: p.name, metric: "delivery p50", value: d.p50, unit: "ms" },
        { scenario: p.name, metric: "delivery p99", value: d.p99, unit: "ms", goal: p.p99Goal },
        { scenario: p.name, metric: "delivery max", value: d.max, unit: "ms" },
        { scenario: p.name, metric: "append rate", value: total / sendSeconds, unit: "events/s" },
        { scenario: p.name, metric: "deliveries", value: d.count, unit: "count" },
      ],
      failures,
    };
  } finally {
    stop.abort();
    tailConns.close();
    appendConns.close();
  }
}

/** Follows one thread until `signal` aborts; `break` would not cancel the call, the signal does. */
async function follow(
  conns: Connections,
  i: number,
  t: Tailer,
  latencies: number[],
  markCaughtUp: () => void,
  signal: AbortSignal,
): Promise<void> {
  try {
    const stream = conns.events(i).tailEvents({ threadId: t.threadId, afterSeq: 0n, follow: true }, { signal });
    for await (const res of stream) {
      const receivedAt = nowMs();
      if (res.item.case === "caughtUp") markCaughtUp();
      if (res.item.case !== "event") continue;
      const event = res.item.value;
      const seq = Number(event.seq);
      if (seq !== t.lastSeq + 1 && t.problems.length < 3) t.problems.push(`seq ${seq} after ${t.lastSeq}`);
      t.lastSeq = Math.max(t.lastSeq, seq);
      if (event.type !== benchEventType) continue;
      t.ticks++;
      latencies.push(receivedAt - Number(event.payload?.sentAt));
    }
    if (!signal.aborted) t.problems.push("stream ended before the benchmark did");
  } catch (err) {
    if (!signal.aborted) t.problems.push(`stream failed: ${String(err)}`);
  } finally {
    markCaughtUp();
  }
}

/** Every tailer saw each acknowledged event of its thread exactly once, in seq order. */
function verify(name: string, tailers: Tailer[], sent: Map<string, number>, lastSeq: Map<string, number>): string[] {
  const bad: string[] = [];
  for (const [i, t] of tailers.entries()) {
    const want = sent.get(t.threadId)!;
    const wantLast = lastSeq.get(t.threadId)!;
    const problems = [...t.problems];
    if (t.ticks !== want) problems.push(`received ${t.ticks} of ${want} events`);
    if (t.lastSeq !== wantLast) problems.push(`last seq ${t.lastSeq}, expected ${wantLast}`);
    if (problems.length) bad.push(`tailer ${i} (thread ${t.threadId}): ${problems.join("; ")}`);
  }
  for (const [threadId, n] of sent) {
    if (lastSeq.get(threadId) !== n + 1) bad.push(`thread ${threadId}: ${n} appends acknowledged but last seq ${lastSeq.get(threadId)}`);
  }
  if (bad.length === 0) return [];
  return [`${name}: ${bad.length} tailers/threads wrong`, ...bad.slice(0, 10).map((b) => `${name}: ${b}`)];
}

async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
