// The hot-path goals, checked against one run's own figures: for each tier
// eventide ran on, each goal's figure, met or not, and what the floors did
// with the same load (the platform's bound: a goal below the node:http2
// floor's figure is out of reach for any server on this machine).
import { scenarioNames, tailersPerThread } from "./plan.js";
import { redisFloorCpuMetric } from "./redis-floor.js";
import { formatValue, render, type Row, rowOf } from "./report.js";
import { serverCpuPer } from "./result.js";
import { isFloor, type Tier } from "./tier-env.js";

interface Verdict {
  figure: string;
  /** Undefined when a figure it needs is not in the run. */
  met: boolean | undefined;
  /** The floors' figures for the same load. */
  floors: string;
}

interface GoalSpec {
  scenario: string;
  goal: string;
  check(find: Finder): Verdict;
}

/** A tier's rows of one scenario: by exact metric, or by how the metric ends (the lean client's, not Connect's). */
interface Finder {
  exact(tier: Tier, scenario: string, metric: string): Row | undefined;
  lean(tier: Tier, scenario: string, suffix: string): Row | undefined;
  tier: Tier;
}

const missing: Verdict = { figure: "not measured in this run", met: undefined, floors: "" };

const show = (r: Row | undefined) => (r ? formatValue(r) : "n/a");
const ok = (r: Row | undefined, test: (v: number) => boolean) => (r && Number.isFinite(r.value) ? test(r.value) : undefined);
const all = (...checks: (boolean | undefined)[]) => (checks.includes(undefined) ? undefined : checks.every(Boolean));

/** What the node:http2 and grpc-js floors did for the same row. */
function floorsOf(find: Finder, scenario: string, row: Row | undefined): string {
  if (!row) return "";
  const http2 = find.exact("floor-http2", scenario, row.metric);
  const grpcjs = find.exact("floor-grpcjs", scenario, row.metric);
  if (!http2 && !grpcjs) return "no floors in this run (--floor)";
  return `node:http2 ${show(http2)}, grpc-js ${show(grpcjs)}`;
}

/**
 * The fan-out's Redis floor (an append's XADD and its XREAD on raw sockets) per delivered event
 * (each append reaches 10 tails), and eventide beside node:http2's floor plus that share.
 */
function redisShare(find: Finder, cpu: Row | undefined): string {
  const redis = find.exact(find.tier, scenarioNames.tail, redisFloorCpuMetric);
  const http2 = cpu && find.exact("floor-http2", scenarioNames.tail, cpu.metric);
  if (!redis || !cpu) return "";
  const perDelivery = redis.value / tailersPerThread;
  const ratio = http2 ? `; eventide ${(cpu.value / (http2.value + perDelivery)).toFixed(1)}× node:http2 + Redis` : "";
  return `; Redis round trips ${show(redis)} an append, ${perDelivery.toFixed(1)} µs a delivery${ratio}`;
}

const goals: GoalSpec[] = [
  {
    scenario: "single append, 1 KiB event",
    goal: "server CPU per call ≤ 2× the grpc-js floor's",
    check(find) {
      const e = find.lean(find.tier, scenarioNames.single, serverCpuPer.calls);
      const g = e && find.exact("floor-grpcjs", scenarioNames.single, e.metric);
      if (!e) return missing;
      const ratio = g ? ` (${(e.value / g.value).toFixed(1)}× grpc-js)` : "";
      return { figure: `${show(e)} a call${ratio}`, met: g ? e.value <= 2 * g.value : undefined, floors: floorsOf(find, scenarioNames.single, e) };
    },
  },
  {
    scenario: "single append, 1 KiB event",
    goal: "p50 ≤ 1 ms at concurrency 1",
    check(find) {
      const e = find.lean(find.tier, scenarioNames.latency, "client: p50");
      return e ? { figure: show(e), met: ok(e, (v) => v <= 1), floors: floorsOf(find, scenarioNames.latency, e) } : missing;
    },
  },
  {
    scenario: "batches of 100 × 1 KiB events",
    goal: "≥ 50,000 events/s per server core (≤ 20 µs of server CPU per event)",
    check(find) {
      const e = find.lean(find.tier, scenarioNames.batch, serverCpuPer.appended);
      if (!e) return missing;
      const perCore = Math.round(1e6 / e.value).toLocaleString("en-US");
      return { figure: `${show(e)} an event (${perCore} events/s per core)`, met: ok(e, (v) => v <= 20), floors: floorsOf(find, scenarioNames.batch, e) };
    },
  },
  {
    scenario: "live fan-out, 1,000 tailers on 100 threads, 2,000 appends/s",
    goal: "≤ 20 µs of server CPU per delivered event (appends included); all deliveries/s; delivery p99 ≤ 50 ms",
    check(find) {
      const cpu = find.lean(find.tier, scenarioNames.tail, serverCpuPer.delivered);
      const rate = find.lean(find.tier, scenarioNames.tail, "deliveries/s");
      const p99 = find.lean(find.tier, scenarioNames.tail, "delivery p99");
      if (!cpu || !rate || !p99) return missing;
      const offered = rate.goal ? ` (≥ ${formatValue({ value: rate.goal.value, unit: rate.unit })} needed)` : "";
      return {
        figure: `${show(cpu)} a delivery, ${show(rate)}${offered}, p99 ${show(p99)}`,
        met: all(ok(cpu, (v) => v <= 20), ok(rate, (v) => v >= (rate.goal?.value ?? 0)), ok(p99, (v) => v <= 50)),
        floors: `${floorsOf(find, scenarioNames.tail, cpu)}${redisShare(find, cpu)}; p99 ${floorsOf(find, scenarioNames.tail, p99)}`,
      };
    },
  },
  {
    scenario: "replay from Postgres (batched)",
    goal: "≥ 100,000 events/s",
    check(find) {
      const e = find.exact(find.tier, scenarioNames.replay, "wire client, batches of 500: events/s delivered");
      return e ? { figure: show(e), met: ok(e, (v) => v >= 100_000), floors: floorsOf(find, scenarioNames.replay, e) } : missing;
    },
  },
  {
    scenario: "replay from S3, 90 % archived (batched)",
    goal: "≥ 100,000 events/s",
    check(find) {
      const e = find.exact(find.tier, scenarioNames.coldReplay, "replay, wire client, batches of 500: events/s delivered");
      return e ? { figure: show(e), met: ok(e, (v) => v >= 100_000), floors: "" } : missing;
    },
  },
  {
    scenario: "10,000 idle followed tails",
    goal: "server RSS ≤ 300 MB",
    check(find) {
      const e = find.exact(find.tier, scenarioNames.idle, "server RSS with the tails");
      const tails = find.exact(find.tier, scenarioNames.idle, "tails followed");
      if (!e) return missing;
      return { figure: `${show(e)} with ${show(tails)} tails`, met: ok(e, (v) => v <= 300), floors: floorsOf(find, scenarioNames.idle, e) };
    },
  },
  {
    scenario: "submit → first message.delta, reference agent",
    goal: "p50 ≤ 5 ms",
    check(find) {
      const e = find.exact(find.tier, scenarioNames.dispatch, "raw client: submit → first delta p50 (reference agent)");
      const typical = find.exact(find.tier, scenarioNames.dispatch, "Connect client: submit → first delta p50 (reference agent)");
      if (!e) return missing;
      const figure = `${show(e)} with a raw client${typical ? ` (Connect's client: ${show(typical)})` : ""}`;
      return { figure, met: ok(e, (v) => v <= 5), floors: "no floor (eventide's own dispatch)" };
    },
  },
];

/** The goals table of the run, one block per eventide tier; a note when the loads were --quick's. */
export function goalsTable(rows: Row[], quick: boolean): string {
  const tiers = [...new Set(rows.map((r) => r.tier))].filter((t) => !isFloor(t));
  const cells: string[][] = [];
  for (const tier of tiers) {
    const find: Finder = {
      tier,
      exact: (t, scenario, metric) => rowOf(rows, t, scenario, metric),
      lean: (t, scenario, suffix) => rows.find((r) => r.tier === t && r.scenario === scenario && r.metric.endsWith(suffix) && !r.metric.startsWith("Connect")),
    };
    for (const g of goals) {
      const v = g.check(find);
      cells.push([g.scenario, tier, g.goal, v.figure, v.met === undefined ? "?" : v.met ? "met" : "NOT MET", v.floors]);
    }
  }
  const note = quick ? "\n(--quick: smaller loads than the goals name — fewer tails, a lower append rate; indicative only)" : "";
  return `${render(["goal scenario", "tier", "goal", "this run", "verdict", "floors, same load"], cells, [])}${note}`;
}
