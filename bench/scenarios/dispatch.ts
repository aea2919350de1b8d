// Turn dispatch, on server children of the scenario's own (fresh tiers each):
// 1. Throughput: `agents` Connect clients in this process receive turns
//    (ReceiveTurns, max_in_flight each) and complete each one as soon as it
//    arrives, while `turns` turns are submitted, each on a new thread, with
//    `submitConcurrency` calls in flight. Server roles server,persister,
//    dispatcher: no reference agent to take turns. Turns/s from the first
//    submit to the last assignment; submit → assignment latency per turn.
//    Every submitted turn must be assigned exactly once.
// 2. First delta: a server child that also runs the reference agent (token
//    delay 0). One turn at a time, on a fresh thread already tailed (caught
//    up): the time from the SubmitTurn call to the first `message.delta`
//    event on the tail, and to `turn.completed`. First with raw node:http2
//    calls (the goal's figure), then with Connect's client (the typical one).
import { type ClientHttp2Session, connect as http2Connect } from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { AgentService } from "../../gen/eventide/v1/agent_service_pb.js";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import {
  CreateThreadRequestSchema,
  CreateThreadResponseSchema,
  SubmitTurnRequestSchema,
  SubmitTurnResponseSchema,
  TurnService,
} from "../../gen/eventide/v1/turn_service_pb.js";
import { nowMs, sleep } from "../clock.js";
import { bytesField, grpcFrame } from "../grpc-wire.js";
import { distribution } from "../percentiles.js";
import { startCpuMeter } from "../process-stats.js";
import { layoutRow, type Measurement, type ScenarioResult } from "../result.js";
import { type ServerUnderTest, withOwnServer } from "../server-under-test.js";
import { freshTierEnv, type Services, type Tier } from "../tier-env.js";
import { wireTail } from "../wire-tail-client.js";
import { grpcHeaders, wireUnary } from "../wire-sessions.js";

export interface DispatchParams {
  name: string;
  tier: Tier;
  services: Services;
  logLevel: string;
  profileDir?: string;
  /** Throughput: agents in this process, each its own HTTP/2 connection. */
  agents: number;
  maxInFlight: number;
  /** Throughput: unmeasured turns first (agents connected, code paths warm). */
  warmupTurns: number;
  turns: number;
  submitConcurrency: number;
  submitConnections: number;
  /** First delta: turns one after another, after `firstDeltaWarmup` unmeasured ones. */
  firstDeltaWarmup: number;
  firstDeltaTurns: number;
}

/** Waiting for the submitted turns' assignments ends after this long without a new one: the rest count as missing. */
const assignStallMs = 10_000;
/** How long one reference-agent turn may take (submit → turn.completed). */
const turnTimeoutMs = 10_000;
/** The reference agent echoes this as "You said: …", one `message.delta` per word. */
const firstDeltaInput = { text: "hello from the dispatch benchmark" };

export async function dispatchBench(p: DispatchParams): Promise<ScenarioResult> {
  const failures: string[] = [];
  const notes: string[] = [];
  const measurements: Measurement[] = [layoutRow(p.name, "own server children")];

  await onOwnServer(p, "server,persister,dispatcher", {}, "throughput", failures, notes, async (server) => {
    const t = await throughput(server, p);
    failures.push(...t.failures.map((f) => `${p.name}: throughput: ${f}`));
    notes.push(...t.notes.map((n) => `${p.name}: throughput: ${n}`));
    const d = distribution(t.latencies);
    measurements.push(
      { scenario: p.name, metric: `throughput (${p.agents} agents × ${p.maxInFlight} in flight)`, value: t.turnsPerSecond, unit: "turns/s" },
      { scenario: p.name, metric: `submit rate (${p.submitConcurrency} in flight)`, value: t.submitsPerSecond, unit: "turns/s" },
      { scenario: p.name, metric: "submit → assignment p50", value: d.p50, unit: "ms" },
      { scenario: p.name, metric: "submit → assignment p99", value: d.p99, unit: "ms" },
      { scenario: p.name, metric: "submit → assignment max", value: d.max, unit: "ms" },
      { scenario: p.name, metric: "turns assigned (measured)", value: d.count, unit: "count" },
    );
  });

  await onOwnServer(p, "server,persister,dispatcher,agent", { EVENTIDE_AGENT_TOKEN_DELAY: "0" }, "first delta", failures, notes, async (server) => {
    const runs = await firstDelta(server.baseUrl, p);
    for (const [client, f] of [["raw client", runs.raw], ["Connect client", runs.connect]] as const) {
      failures.push(...f.failures.map((x) => `${p.name}: first delta, ${client}: ${x}`));
      notes.push(...f.notes.map((n) => `${p.name}: first delta, ${client}: ${n}`));
      const delta = distribution(f.firstDelta);
      const completed = distribution(f.completed);
      measurements.push(
        { scenario: p.name, metric: `${client}: submit → first delta p50 (reference agent)`, value: delta.p50, unit: "ms" },
        { scenario: p.name, metric: `${client}: submit → first delta p99 (reference agent)`, value: delta.p99, unit: "ms" },
        { scenario: p.name, metric: `${client}: submit → first delta max`, value: delta.max, unit: "ms" },
        { scenario: p.name, metric: `${client}: submit → turn.completed p50`, value: completed.p50, unit: "ms" },
        { scenario: p.name, metric: `${client}: turns one at a time (measured)`, value: delta.count, unit: "count" },
      );
    }
  });

  return { measurements, failures, notes };
}

/** A server child on fresh tiers of its own for `work`, always closed; its death and warnings are reported. */
function onOwnServer(
  p: DispatchParams,
  roles: string,
  extraEnv: Record<string, string>,
  part: string,
  failures: string[],
  notes: string[],
  work: (server: ServerUnderTest) => Promise<void>,
): Promise<void> {
  const tiers = freshTierEnv(p.tier, p.services, extraEnv);
  const options = { tiers, ownsTiers: true, logLevel: p.logLevel, profileDir: p.profileDir, roles };
  return withOwnServer(options, `${p.name}: ${part}: its server (${roles})`, failures, notes, work);
}

interface Throughput {
  turnsPerSecond: number;
  /** What the load offered: a throughput near it says dispatch kept up. */
  submitsPerSecond: number;
  latencies: number[];
  failures: string[];
  notes: string[];
}

/** What the agents saw, shared by them: per turn id its assignments and the time of the first. */
interface Assignments {
  count: Map<string, number>;
  firstAt: Map<string, number>;
  perAgent: number[];
  completes: Promise<void>[];
  completeFailures: string[];
  cancellations: number;
  streamProblems: string[];
}

async function throughput(server: ServerUnderTest, p: DispatchParams): Promise<Throughput> {
  const { baseUrl } = server;
  const failures: string[] = [];
  const notes: string[] = [];
  const sessions: Http2SessionManager[] = [];
  const session = () => {
    const s = new Http2SessionManager(baseUrl);
    sessions.push(s);
    return createGrpcTransport({ baseUrl, sessionManager: s });
  };
  const submitters = Array.from({ length: p.submitConnections }, () => createClient(TurnService, session()));
  const seen: Assignments = {
    count: new Map(),
    firstAt: new Map(),
    perAgent: new Array<number>(p.agents).fill(0),
    completes: [],
    completeFailures: [],
    cancellations: 0,
    streamProblems: [],
  };
  // One controller per agent: each stream is cancelled by its own signal.
  const cancels = Array.from({ length: p.agents }, () => new AbortController());
  const agents = cancels.map((cancel, i) => runAgent(createClient(AgentService, session()), i, p.maxInFlight, seen, cancel.signal));
  try {
    // Warm-up: the agents' streams are open and every code path has run once.
    const warm = await submitAll(submitters, p.warmupTurns, p.submitConcurrency);
    if (!(await waitAssigned(warm.turns, seen))) notes.push(`warm-up: no new assignment for ${assignStallMs} ms, gave up waiting`);

    const t0 = nowMs();
    const spent = startCpuMeter(server.pid);
    const measured = await submitAll(submitters, p.turns, p.submitConcurrency);
    const submittedAt = nowMs();
    if (!(await waitAssigned(measured.turns, seen))) notes.push(`no new assignment for ${assignStallMs} ms, gave up waiting`);
    // Let every completion land before the feeds end (an open lease would be requeued: a second assignment).
    await Promise.all(seen.completes);
    await sleep(50);

    const latencies: number[] = [];
    let lastAssignedAt = t0;
    for (const t of measured.turns) {
      const at = seen.firstAt.get(t.turnId);
      if (at === undefined) continue;
      latencies.push(at - t.startedAt);
      lastAssignedAt = Math.max(lastAssignedAt, at);
    }
    const wallSeconds = (lastAssignedAt - t0) / 1000;
    const cpu = spent();
    const busy = (us: number) => `${((us / 1e6 / wallSeconds) * 100).toFixed(0)}%`;
    notes.push(`CPU over the measured turns: bench process ${busy(cpu.bench)}, server child ${busy(cpu.server)} of one core`);
    notes.push(
      `${measured.turns.length} turns submitted in ${(submittedAt - t0).toFixed(0)} ms, the last assigned ` +
        `${(lastAssignedAt - t0).toFixed(0)} ms after the first submit; per agent ${Math.min(...seen.perAgent)}–${Math.max(...seen.perAgent)} assignments`,
    );

    // Every submitted turn exactly once; nothing else.
    const submitted = [...warm.turns, ...measured.turns];
    const ids = new Set(submitted.map((t) => t.turnId));
    const missing = submitted.filter((t) => !seen.count.has(t.turnId)).map((t) => t.turnId);
    const repeated = [...seen.count].filter(([, n]) => n > 1);
    const unknown = [...seen.count.keys()].filter((id) => !ids.has(id));
    if (missing.length) failures.push(`${missing.length} of ${submitted.length} submitted turns never assigned (e.g. ${missing.slice(0, 3).join(", ")})`);
    if (repeated.length) {
      failures.push(
        `${repeated.length} turns assigned more than once (e.g. ${repeated.slice(0, 3).map(([id, n]) => `${id} ×${n}`).join(", ")})`,
      );
    }
    const failedSubmits = warm.failures + measured.failures;
    if (unknown.length) {
      // A failed SubmitTurn may still have queued its turn; without one, a stranger is wrong.
      const what = `${unknown.length} assignments of turns never submitted (e.g. ${unknown.slice(0, 3).join(", ")})`;
      if (failedSubmits > 0) notes.push(`${what}, after ${failedSubmits} failed submits`);
      else failures.push(what);
    }
    if (failedSubmits > 0) notes.push(`${failedSubmits} SubmitTurn calls failed: ${[...warm.errors, ...measured.errors].slice(0, 3).join("; ")}`);
    if (seen.completeFailures.length) {
      notes.push(`${seen.completeFailures.length} CompleteTurn calls failed: ${seen.completeFailures.slice(0, 3).join("; ")}`);
    }
    if (seen.cancellations) notes.push(`${seen.cancellations} cancellations received (none expected)`);
    const submitsPerSecond = measured.turns.length / ((submittedAt - t0) / 1000);
    return { turnsPerSecond: latencies.length / wallSeconds, submitsPerSecond, latencies, failures, notes };
  } finally {
    for (const cancel of cancels) cancel.abort();
    await Promise.all(agents);
    // A departed agent's feed still unsticks the threads it ran after its stream ended: the
    // server's shutdown waits for that (StreamShutdown) before it closes the tiers.
    for (const s of sessions) s.abort();
    if (seen.streamProblems.length) notes.push(`agent streams: ${seen.streamProblems.slice(0, 3).join("; ")}`);
  }
}

/** One agent: every assignment is recorded and completed at once (not awaited: the feed keeps reading). */
async function runAgent(client: Client<typeof AgentService>, i: number, maxInFlight: number, seen: Assignments, signal: AbortSignal): Promise<void> {
  try {
    const stream = client.receiveTurns({ agentId: `bench-agent-${i}`, maxInFlight }, { signal });
    for await (const res of stream) {
      const at = nowMs();
      if (res.item.case === "cancellation") {
        seen.cancellations++;
        continue;
      }
      if (res.item.case !== "assignment") continue;
      const a = res.item.value;
      const turnId = a.turn!.turnId;
      seen.count.set(turnId, (seen.count.get(turnId) ?? 0) + 1);
      if (!seen.firstAt.has(turnId)) seen.firstAt.set(turnId, at);
      seen.perAgent[i]++;
      seen.completes.push(
        client.completeTurn({ turnId, leaseId: a.leaseId, output: {} }).then(
          () => {},
          (err) => void seen.completeFailures.push(`${turnId}: ${String(err)}`),
        ),
      );
    }
    if (!signal.aborted) seen.streamProblems.push(`agent ${i}: stream ended before the benchmark did`);
  } catch (err) {
    if (!signal.aborted) seen.streamProblems.push(`agent ${i}: stream failed: ${String(err)}`);
  }
}

interface Submitted {
  turns: { turnId: string; startedAt: number }[];
  failures: number;
  errors: string[];
}

/** `n` SubmitTurn calls, each on a new thread, `concurrency` at a time round-robin over the clients. */
async function submitAll(clients: Client<typeof TurnService>[], n: number, concurrency: number): Promise<Submitted> {
  const out: Submitted = { turns: [], failures: 0, errors: [] };
  let next = 0;
  const worker = async () => {
    for (let k = next++; k < n; k = next++) {
      const startedAt = nowMs();
      try {
        const res = await clients[k % clients.length].submitTurn({ input: { text: "hi" } });
        out.turns.push({ turnId: res.turn!.turnId, startedAt });
      } catch (err) {
        out.failures++;
        if (out.errors.length < 3) out.errors.push(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

/** Until every turn is assigned (true), or no assignment at all arrived for `assignStallMs` (false). */
async function waitAssigned(turns: { turnId: string }[], seen: Assignments): Promise<boolean> {
  let [assigned, progressAt] = [seen.count.size, nowMs()];
  while (!turns.every((t) => seen.count.has(t.turnId))) {
    if (seen.count.size > assigned) [assigned, progressAt] = [seen.count.size, nowMs()];
    if (nowMs() - progressAt > assignStallMs) return false;
    await sleep(2);
  }
  return true;
}

interface FirstDelta {
  firstDelta: number[];
  completed: number[];
  failures: string[];
  notes: string[];
}

/** What one turn of the first-delta part gave: its times from the SubmitTurn call, or what went wrong. */
interface TurnTimes {
  firstDeltaMs?: number;
  completedMs?: number;
  problem?: string;
}

/**
 * The turns one after another, first with raw node:http2 calls (the goal's figure: what the
 * server and its reference agent take, not the bench's client), then with Connect's client
 * (the typical client's figure), on the same server.
 */
async function firstDelta(baseUrl: string, p: DispatchParams): Promise<{ raw: FirstDelta; connect: FirstDelta }> {
  const session = http2Connect(baseUrl);
  session.on("error", () => {}); // a broken connection fails the calls on it, which say so
  let raw: FirstDelta;
  try {
    raw = await turnsOneByOne(p, () => oneTurnRaw(session));
  } finally {
    session.destroy();
  }
  const sessionManager = new Http2SessionManager(baseUrl);
  const transport = createGrpcTransport({ baseUrl, sessionManager });
  const turns = createClient(TurnService, transport);
  const events = createClient(EventService, transport);
  try {
    return { raw, connect: await turnsOneByOne(p, () => oneTurn(turns, events)) };
  } finally {
    sessionManager.abort();
  }
}

async function turnsOneByOne(p: DispatchParams, oneTurn: () => Promise<TurnTimes>): Promise<FirstDelta> {
  const out: FirstDelta = { firstDelta: [], completed: [], failures: [], notes: [] };
  for (let i = 0; i < p.firstDeltaWarmup + p.firstDeltaTurns; i++) {
    const r = await oneTurn();
    if (r.problem) {
      out.failures.push(r.problem);
      if (out.failures.length >= 5) {
        out.notes.push(`stopped after ${i + 1} turns: too many failed`);
        break;
      }
      continue;
    }
    if (i < p.firstDeltaWarmup) continue;
    out.firstDelta.push(r.firstDeltaMs!);
    out.completed.push(r.completedMs!);
  }
  return out;
}

/** What a turn's tail saw, and when: shared by both clients' turns. */
class TurnWatch {
  firstDelta?: { at: number; turnId: string };
  completed?: { at: number; turnId: string };
  problem?: string;
  readonly isCaughtUp: Promise<void>;
  readonly isCompleted: Promise<void>;
  caughtUp!: () => void;
  private settle!: () => void;

  constructor() {
    this.isCaughtUp = new Promise<void>((resolve) => (this.caughtUp = resolve));
    this.isCompleted = new Promise<void>((resolve) => (this.settle = resolve));
  }

  event(at: number, type: string, turnId: string, payload: () => string): void {
    if (type === "message.delta") this.firstDelta ??= { at, turnId };
    if (type === "turn.completed" || type === "turn.failed" || type === "turn.dead_lettered") {
      if (type !== "turn.completed") this.problem = `${type}: ${payload()}`;
      this.completed = { at, turnId };
      this.settle();
    }
  }

  /** The tail is over: nothing more will come. */
  ended(): void {
    this.caughtUp();
    this.settle();
  }

  /** Once the tail caught up: the submit (the clock starts as it is sent), then turn.completed. */
  async submitAndWait(threadId: string, cancelled: () => boolean, submit: () => Promise<string>): Promise<TurnTimes> {
    await this.isCaughtUp;
    if (cancelled() || this.problem) return { problem: `thread ${threadId}: ${this.problem ?? `tail not caught up within ${turnTimeoutMs} ms`}` };
    const startedAt = nowMs();
    let turnId: string;
    try {
      turnId = await submit();
    } catch (err) {
      return { problem: `thread ${threadId}: SubmitTurn failed: ${String(err)}` };
    }
    await this.isCompleted;
    return this.result(turnId, startedAt);
  }

  /** The turn's times from `startedAt`, or what was wrong with it. */
  private result(turnId: string, startedAt: number): TurnTimes {
    if (this.problem) return { problem: `turn ${turnId}: ${this.problem}` };
    if (!this.completed) return { problem: `turn ${turnId}: not completed within ${turnTimeoutMs} ms` };
    if (!this.firstDelta) return { problem: `turn ${turnId}: completed without a message.delta` };
    if (this.completed.turnId !== turnId) return { problem: `turn ${turnId}: turn.completed of turn ${this.completed.turnId}` };
    if (this.firstDelta.turnId !== turnId) return { problem: `turn ${turnId}: a message.delta of turn ${this.firstDelta.turnId}` };
    return { firstDeltaMs: this.firstDelta.at - startedAt, completedMs: this.completed.at - startedAt };
  }
}

/**
 * A fresh thread, tailed from seq 0 until caught up; then SubmitTurn. The
 * first delta may arrive before SubmitTurn returns, so events are matched to
 * the turn afterwards. The tail ends (its signal aborted) at turn.completed.
 */
async function oneTurn(turns: Client<typeof TurnService>, events: Client<typeof EventService>): Promise<TurnTimes> {
  const { thread } = await turns.createThread({});
  const threadId = thread!.threadId;
  const cancel = new AbortController();
  const watch = new TurnWatch();
  const tail = (async () => {
    try {
      const stream = events.tailEvents({ threadId, afterSeq: 0n, follow: true }, { signal: cancel.signal });
      for await (const res of stream) {
        const at = nowMs();
        if (res.item.case === "caughtUp") watch.caughtUp();
        if (res.item.case !== "event") continue;
        const e = res.item.value;
        watch.event(at, e.type, e.turnId, () => JSON.stringify(e.payload));
      }
    } catch (err) {
      if (!cancel.signal.aborted) watch.problem = `tail failed: ${String(err)}`;
    } finally {
      watch.ended();
    }
  })();
  // Bounds the whole turn, the tail's catching up included.
  const timer = setTimeout(() => cancel.abort(), turnTimeoutMs);
  try {
    return await watch.submitAndWait(threadId, () => cancel.signal.aborted, async () => (await turns.submitTurn({ threadId, input: firstDeltaInput })).turn!.turnId);
  } finally {
    clearTimeout(timer);
    cancel.abort();
    await tail;
  }
}

const createThreadHeaders = grpcHeaders("/eventide.v1.TurnService/CreateThread");
const submitTurnHeaders = grpcHeaders("/eventide.v1.TurnService/SubmitTurn");
const createThreadFrame = grpcFrame(toBinary(CreateThreadRequestSchema, create(CreateThreadRequestSchema)));
// Event fields the raw tail reads in place.
const eventTurnIdField = 3;
const eventTypeField = 5;

/** oneTurn with raw node:http2 calls: the request encoded before the clock starts, events read in place. */
async function oneTurnRaw(session: ClientHttp2Session): Promise<TurnTimes> {
  let threadId: string;
  try {
    threadId = fromBinary(CreateThreadResponseSchema, await wireUnary(session, createThreadHeaders, createThreadFrame)).thread!.threadId;
  } catch (err) {
    return { problem: `CreateThread failed: ${String(err)}` };
  }
  const submitFrame = grpcFrame(toBinary(SubmitTurnRequestSchema, create(SubmitTurnRequestSchema, { threadId, input: firstDeltaInput })));
  const watch = new TurnWatch();
  let cancelled = false;
  const text = (buf: Buffer, from: number, end: number, field: number) => {
    const bounds = bytesField(buf, from, end, field);
    return bounds ? buf.toString("utf8", bounds[0], bounds[1]) : "";
  };
  const cancelTail = wireTail(session, { threadId, follow: true }, {
    event: (buf, from, end) => watch.event(nowMs(), text(buf, from, end, eventTypeField), text(buf, from, end, eventTurnIdField), () => "(payload not read)"),
    caughtUp: () => watch.caughtUp(),
    ended: (problem) => {
      if (problem && !cancelled) watch.problem = `tail failed: ${problem}`;
      watch.ended();
    },
  });
  const cancel = () => {
    cancelled = true;
    cancelTail();
  };
  const timer = setTimeout(cancel, turnTimeoutMs);
  try {
    return await watch.submitAndWait(
      threadId,
      () => cancelled,
      async () => fromBinary(SubmitTurnResponseSchema, await wireUnary(session, submitTurnHeaders, submitFrame)).turn!.turnId,
    );
  } finally {
    clearTimeout(timer);
    cancel();
    await watch.isCompleted;
  }
}
