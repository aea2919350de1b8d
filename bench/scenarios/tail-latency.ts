// Live delivery: `threads × tailersPerThread` followed tails, while single
// events are appended open-loop at `ratePerSecond` (round-robin over the
// threads). Each payload carries its send time; each tailer records
// receive − send. Every tailer must see its thread's events once each, in seq
// order, up to the thread's last seq.
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
  /** The server's: a tail silent this long polls storage, so a missed live event arrives by then. */
  heartbeatMs: number;
}

/** What one tailer saw. */
interface Tailer {
  threadId: string;
  lastSeq: number;
  ticks: number;
  lastReceivedAt: number;
  problems: string[];
}

/** Shared by the tailers: every latency, and the newest one (the overload guard watches it). */
interface Deliveries {
  latencies: number[];
  newestLagMs: number;
}

const setupTimeoutMs = 30_000;
/**
 * Past this delivery lag, or half a second of appends in flight, the server is
 * overloaded: sending stops (else calls pile up until Redis commands time out).
 */
const overloadLagMs = 1_000;

export async function tailLatency(baseUrl: string, p: TailLatencyParams): Promise<ScenarioResult> {
  const tailConns = new Connections(baseUrl, p.tailConnections);
  const appendConns = new Connections(baseUrl, p.appendConnections);
  const failures: string[] = [];
  const notes: string[] = [];
  const deliveries: Deliveries = { latencies: [], newestLagMs: 0 };
  try {
    const threadIds = await appendConns.createThreads(p.threads);
    const setupStarted = nowMs();
    const tailers: Tailer[] = [];
    // One controller per call: a shared signal would collect a thousand abort listeners.
    const cancels: AbortController[] = [];
    const caughtUp: Promise<void>[] = [];
    const running: Promise<void>[] = [];
    for (let i = 0; i < p.threads * p.tailersPerThread; i++) {
      const tailer: Tailer = { threadId: threadIds[i % p.threads], lastSeq: 0, ticks: 0, lastReceivedAt: nowMs(), problems: [] };
      const cancel = new AbortController();
      let markCaughtUp!: () => void;
      caughtUp.push(new Promise<void>((resolve) => (markCaughtUp = resolve)));
      tailers.push(tailer);
      cancels.push(cancel);
      running.push(follow(tailConns, i, tailer, deliveries, markCaughtUp, cancel.signal));
    }
    if (!(await within(Promise.all(caughtUp), setupTimeoutMs))) {
      failures.push(`${p.name}: tailers not caught up after ${setupTimeoutMs} ms`);
    }
    const setupMs = nowMs() - setupStarted;

    // Open loop: event k is due at t0 + k/rate whatever the previous calls do.
    const total = Math.round(p.ratePerSecond * p.seconds);
    const acks: Promise<void>[] = [];
    let [inFlight, acked, failedCalls] = [0, 0, 0];
    const t0 = nowMs() + 5;
    let k = 0;
    const overloaded = () => inFlight > p.ratePerSecond / 2 || deliveries.newestLagMs > overloadLagMs;
    while (k < total && !overloaded()) {
      const wait = t0 + (k * 1000) / p.ratePerSecond - nowMs();
      if (wait > 0) {
        await sleep(wait);
        continue;
      }
      for (; k < total && t0 + (k * 1000) / p.ratePerSecond <= nowMs() && !overloaded(); k++) {
        const threadId = threadIds[k % p.threads];
        const events = [{ type: benchEventType, payload: { sentAt: nowMs(), k } }];
        inFlight++;
        acks.push(
          appendConns.events(k).appendEvents({ threadId, events }).then(
            () => void acked++,
            (err) => {
              if (failedCalls++ < 3) notes.push(`${p.name}: append failed: ${String(err)}`);
            },
          ).finally(() => inFlight--),
        );
      }
    }
    const sendSeconds = (nowMs() - t0) / 1000;
    if (k < total) {
      notes.push(
        `${p.name}: overloaded ${sendSeconds.toFixed(1)} s in (delivery lag ${deliveries.newestLagMs.toFixed(0)} ms, ` +
          `${inFlight} appends in flight): stopped sending after ${k} of ${total} events`,
      );
    }
    await Promise.all(acks);
    if (failedCalls > 0) notes.push(`${p.name}: ${failedCalls} of ${k} appends failed (a failed append may still be in the log)`);

    // What each thread holds now is what each of its tailers must have received.
    const lastSeq = new Map<string, number>();
    for (const threadId of threadIds) {
      const { thread } = await appendConns.turns.getThread({ threadId });
      lastSeq.set(threadId, Number(thread!.lastSeq));
    }
    // A tailer behind its thread and silent for longer than the server's idle
    // poll is stuck; one still receiving is only slow (given up on at the cap).
    const stuckAfterMs = p.heartbeatMs + 1_000;
    const sentEnd = nowMs();
    const pending = () => tailers.filter((t) => t.lastSeq < lastSeq.get(t.threadId)!);
    while (pending().length > 0 && nowMs() - sentEnd < stuckAfterMs + 5_000) {
      if (pending().every((t) => nowMs() - t.lastReceivedAt > stuckAfterMs)) break;
      await sleep(10);
    }
    const drainMs = nowMs() - sentEnd;
    for (const cancel of cancels) cancel.abort();
    await Promise.all(running);

    const verdict = verify(tailers, lastSeq, stuckAfterMs);
    failures.push(...verdict.failures.map((f) => `${p.name}: ${f}`));
    notes.push(...verdict.notes.map((n) => `${p.name}: ${n}`));
    const d = distribution(deliveries.latencies);
    return {
      measurements: [
        { scenario: p.name, metric: "delivery p50", value: d.p50, unit: "ms" },
        { scenario: p.name, metric: "delivery p99", value: d.p99, unit: "ms", goal: p.p99Goal },
        { scenario: p.name, metric: "delivery max", value: d.max, unit: "ms" },
        { scenario: p.name, metric: "offered rate", value: k / sendSeconds, unit: "events/s" },
        { scenario: p.name, metric: "events appended", value: acked, unit: "count" },
        { scenario: p.name, metric: "tailers", value: tailers.length, unit: "count" },
        { scenario: p.name, metric: "all tailers caught up", value: setupMs, unit: "ms" },
        { scenario: p.name, metric: "deliveries", value: d.count, unit: "count" },
        { scenario: p.name, metric: "drain after last ack", value: drainMs, unit: "ms" },
      ],
      failures,
      notes,
    };
  } finally {
    tailConns.close();
    appendConns.close();
  }
}

/** Follows one thread until `signal` aborts; `break` would not cancel the call, the signal does. */
async function follow(
  conns: Connections,
  i: number,
  t: Tailer,
  deliveries: Deliveries,
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
      t.lastReceivedAt = receivedAt;
      if (event.type !== benchEventType) continue;
      t.ticks++;
      const lag = receivedAt - Number(event.payload?.sentAt);
      deliveries.latencies.push(lag);
      deliveries.newestLagMs = lag;
    }
    if (!signal.aborted) t.problems.push("stream ended before the benchmark did");
  } catch (err) {
    if (!signal.aborted) t.problems.push(`stream failed: ${String(err)}`);
  } finally {
    markCaughtUp();
  }
}

/**
 * Out-of-order, repeated or missing seqs are failures; so is a tailer behind
 * its thread that received nothing for `stuckAfterMs`. One still receiving
 * when the drain ran out is slow, not wrong: a note.
 */
function verify(tailers: Tailer[], lastSeq: Map<string, number>, stuckAfterMs: number): { failures: string[]; notes: string[] } {
  const wrong: string[] = [];
  let lagging = 0;
  const now = nowMs();
  for (const [i, t] of tailers.entries()) {
    const want = lastSeq.get(t.threadId)!;
    const problems = [...t.problems];
    if (t.lastSeq > want) problems.push(`last seq ${t.lastSeq} beyond the thread's ${want}`);
    if (t.lastSeq === want && t.ticks !== want - 1) problems.push(`${t.ticks} events for seqs 2-${want}`);
    if (t.lastSeq < want) {
      if (now - t.lastReceivedAt > stuckAfterMs) problems.push(`stuck at seq ${t.lastSeq} of ${want}`);
      else lagging++;
    }
    if (problems.length) wrong.push(`tailer ${i} (thread ${t.threadId}): ${problems.join("; ")}`);
  }
  const notes = lagging ? [`${lagging} tailers were behind but still receiving when the drain ran out`] : [];
  if (wrong.length === 0) return { failures: [], notes };
  return { failures: [`${wrong.length} of ${tailers.length} tailers wrong`, ...wrong.slice(0, 10)], notes };
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
