// Live delivery: `threads × tailersPerThread` followed tails, while single
// events are appended open-loop at `ratePerSecond` (round-robin over the
// threads). Each payload carries its send time; each tailer records
// receive − send. Every tailer must see its thread's events once each, in seq
// order, up to the thread's last seq. After a warm-up at half the rate (not
// measured), the server child's CPU from the first append to the last
// delivery, over the events delivered, is the cost of a delivered event, the
// appends' own included. The client is the lean wire
// one (the server's figure) or Connect's (a typical client's).
import { nowMs, sleep, within } from "../clock.js";
import { distribution } from "../percentiles.js";
import { startCpuMeter } from "../process-stats.js";
import { cpuRows, type Goal, type ScenarioResult } from "../result.js";
import type { ServerUnderTest } from "../server-under-test.js";
import { connectTailDriver, type TailDriver, type TailEvents, wireTailDriver } from "../tail-drivers.js";

export interface TailLatencyParams {
  name: string;
  client: "wire" | "Connect";
  threads: number;
  tailersPerThread: number;
  tailConnections: number;
  appendConnections: number;
  ratePerSecond: number;
  seconds: number;
  /** Before the measured part, this long at half the rate (not measured). */
  warmupSeconds: number;
  p99Goal?: Goal;
  /** The server's: a tail silent this long polls storage, so a missed live event arrives by then. */
  heartbeatMs: number;
  /** On the server's CPU per delivered event. */
  cpuGoal?: Goal;
}

/** What one tailer saw. */
interface Tailer {
  threadId: string;
  lastSeq: number;
  ticks: number;
  lastReceivedAt: number;
  problems: string[];
}

/** Shared by the tailers: every latency, the newest one (the overload guard watches it), and when the last arrived. */
interface Deliveries {
  latencies: number[];
  newestLagMs: number;
  lastAt: number;
}

const setupTimeoutMs = 30_000;
/**
 * Past this delivery lag, or half a second of appends in flight, the server is
 * overloaded: sending stops (else calls pile up until Redis commands time out).
 */
const overloadLagMs = 1_000;
/** Appends sent in one go before the sender lets the event loop read what has arrived. */
const sendBurst = 20;

export async function tailLatency(server: ServerUnderTest, p: TailLatencyParams): Promise<ScenarioResult> {
  const driver: TailDriver = (p.client === "wire" ? wireTailDriver : connectTailDriver)(server.baseUrl, p.tailConnections, p.appendConnections);
  const label = driver.client;
  const failures: string[] = [];
  const notes: string[] = [];
  const deliveries: Deliveries = { latencies: [], newestLagMs: 0, lastAt: 0 };
  try {
    const threadIds = await driver.setup.createThreads(p.threads);
    const setupStarted = nowMs();
    const tailers: Tailer[] = [];
    const cancels: (() => void)[] = [];
    const caughtUp: Promise<void>[] = [];
    const running: Promise<void>[] = [];
    for (let i = 0; i < p.threads * p.tailersPerThread; i++) {
      const tailer: Tailer = { threadId: threadIds[i % p.threads], lastSeq: 0, ticks: 0, lastReceivedAt: nowMs(), problems: [] };
      tailers.push(tailer);
      let markCaughtUp!: () => void;
      caughtUp.push(new Promise<void>((resolve) => (markCaughtUp = resolve)));
      running.push(
        new Promise<void>((resolve) => {
          // A thread's tailers on different connections, as different clients' would be.
          cancels.push(driver.follow(Math.floor(i / p.threads), tailer.threadId, record(tailer, deliveries, markCaughtUp, resolve)));
        }),
      );
    }
    if (!(await within(Promise.all(caughtUp), setupTimeoutMs))) {
      failures.push(`${p.name}: ${label}: tailers not caught up after ${setupTimeoutMs} ms`);
    }
    const setupMs = nowMs() - setupStarted;

    // Warm-up, not measured: the same load at half the rate, so that the server's code is
    // optimised and its heap grown before the measured part (a cold server falls behind in its
    // first second at the full rate, and the run then stops on the overload guard).
    let [acked, failedCalls] = [0, 0];
    const send = (count: number, rate: number, from: number) =>
      sendOpenLoop(count, rate, from, deliveries, (k) =>
        driver.append(k, threadIds[k % p.threads]).then(
          () => void acked++,
          (err) => {
            if (failedCalls++ < 3) notes.push(`${p.name}: ${label}: append failed: ${String(err)}`);
          },
        ),
      );
    const warmupEvents = Math.round((p.ratePerSecond / 2) * p.warmupSeconds);
    if (warmupEvents > 0) {
      const warm = await send(warmupEvents, p.ratePerSecond / 2, 0);
      await Promise.all(warm.acks);
      const warmEnd = nowMs();
      while (nowMs() - warmEnd < setupTimeoutMs && tailers.some((t) => t.ticks < Math.floor(acked / p.threads))) await sleep(10);
      if (warm.sent < warmupEvents) notes.push(`${p.name}: ${label}: overloaded in the warm-up, after ${warm.sent} of ${warmupEvents} events`);
      // A thread given one event more than the floor above may still be delivering it: let it land
      // before the latencies start over, so no warm-up delivery counts as a measured one.
      await sleep(200);
      deliveries.latencies = [];
      deliveries.newestLagMs = 0;
    }
    const ackedBefore = acked;

    // Open loop: event k is due at t0 + k/rate whatever the previous calls do.
    const total = Math.round(p.ratePerSecond * p.seconds);
    const meter = startCpuMeter(server.pid);
    const { t0, sent: k, sendSeconds, inFlight, acks } = await send(total, p.ratePerSecond, warmupEvents);
    if (k < total) {
      notes.push(
        `${p.name}: ${label}: overloaded ${sendSeconds.toFixed(1)} s in (delivery lag ${deliveries.newestLagMs.toFixed(0)} ms, ` +
          `${inFlight} appends in flight): stopped sending after ${k} of ${total} events`,
      );
    }
    await Promise.all(acks);
    if (failedCalls > 0) notes.push(`${p.name}: ${label}: ${failedCalls} of ${k} appends failed (a failed append may still be in the log)`);

    // What each thread holds now is what each of its tailers must have received.
    const lastSeq = new Map<string, number>();
    for (const threadId of threadIds) {
      const { thread } = await driver.setup.turns.getThread({ threadId });
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
    const spent = meter();
    const drainMs = nowMs() - sentEnd;
    for (const cancel of cancels) cancel();
    await Promise.all(running);

    const verdict = verify(tailers, lastSeq, stuckAfterMs);
    failures.push(...verdict.failures.map((f) => `${p.name}: ${label}: ${f}`));
    notes.push(...verdict.notes.map((n) => `${p.name}: ${label}: ${n}`));
    notes.push(...driver.errors().map((e) => `${p.name}: ${label}: ${e}`));
    const d = distribution(deliveries.latencies);
    const row = (metric: string, value: number, unit: "ms" | "events/s" | "count", goal?: Goal) => ({ scenario: p.name, metric: `${label}: ${metric}`, value, unit, goal });
    const cpu = cpuRows(p.name, label, spent, { calls: acked - ackedBefore, delivered: d.count }, "bench process");
    const perDelivered = cpu.find((r) => r.metric.endsWith("server CPU per delivered event"));
    if (perDelivered) perDelivered.goal = p.cpuGoal;
    return {
      measurements: [
        row("delivery p50", d.p50, "ms"),
        row("delivery p99", d.p99, "ms", p.p99Goal),
        row("delivery max", d.max, "ms"),
        row("offered appends/s", k / sendSeconds, "events/s"),
        // From the first send to the last delivery; on schedule, the last lands a few ms after the sending period: 1 % slack.
        row("deliveries/s", d.count && d.count / ((deliveries.lastAt - t0) / 1000), "events/s", { op: ">=", value: 0.99 * p.ratePerSecond * p.tailersPerThread }),
        row("events appended", acked - ackedBefore, "count"),
        row("tailers", tailers.length, "count"),
        row("all tailers caught up", setupMs, "ms"),
        row("deliveries", d.count, "count"),
        row("drain after last ack", drainMs, "ms"),
        ...cpu,
      ],
      failures,
      notes,
    };
  } finally {
    driver.close();
  }
}

/**
 * Open loop: event k is due at t0 + (k - from)/rate whatever the previous calls do; sending stops
 * early when the server is overloaded. Says how many were sent and the calls still in flight.
 */
async function sendOpenLoop(
  count: number,
  rate: number,
  from: number,
  deliveries: Deliveries,
  append: (k: number) => Promise<void>,
): Promise<{ t0: number; sent: number; sendSeconds: number; inFlight: number; acks: Promise<void>[] }> {
  const acks: Promise<void>[] = [];
  let inFlight = 0;
  const t0 = nowMs() + 5;
  let i = 0;
  const overloaded = () => inFlight > rate / 2 || deliveries.newestLagMs > overloadLagMs;
  while (i < count && !overloaded()) {
    const wait = t0 + (i * 1000) / rate - nowMs();
    if (wait > 0) {
      await sleep(wait);
      continue;
    }
    for (const burstEnd = i + sendBurst; i < burstEnd && i < count && t0 + (i * 1000) / rate <= nowMs() && !overloaded(); i++) {
      inFlight++;
      acks.push(append(from + i).finally(() => inFlight--));
    }
    // A sender behind schedule still reads the answers between bursts: else the appends it has not
    // read yet count as in flight, and the server looks overloaded when the bench is.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { t0, sent: i, sendSeconds: (nowMs() - t0) / 1000, inFlight, acks };
}

/** A tailer's reports, recorded: seqs checked, send-to-receive latencies kept. */
function record(t: Tailer, deliveries: Deliveries, markCaughtUp: () => void, done: () => void): TailEvents {
  return {
    event(seq, sentAt, receivedAt) {
      if (seq !== t.lastSeq + 1 && t.problems.length < 3) t.problems.push(`seq ${seq} after ${t.lastSeq}`);
      t.lastSeq = Math.max(t.lastSeq, seq);
      t.lastReceivedAt = receivedAt;
      if (Number.isNaN(sentAt)) return;
      t.ticks++;
      const lag = receivedAt - sentAt;
      deliveries.latencies.push(lag);
      deliveries.newestLagMs = lag;
      deliveries.lastAt = receivedAt;
    },
    caughtUp: markCaughtUp,
    ended(problem) {
      if (problem) t.problems.push(problem);
      markCaughtUp();
      done();
    },
  };
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
