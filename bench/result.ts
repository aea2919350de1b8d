// What a scenario hands back: numbers for the table, correctness failures,
// and notes (what a reader of the numbers should know, e.g. an overload).
import type { CpuSpent } from "./process-stats.js";
import { isFloor, type Tier } from "./tier-env.js";

export interface Goal {
  op: ">=" | "<=";
  value: number;
}

export interface Measurement {
  scenario: string;
  metric: string;
  value: number;
  /** How to print `value`: a rate, a duration, CPU time per unit (µs), memory, a share of one core, a plain count, or `text` (a label such as the process layout). */
  unit: "events/s" | "turns/s" | "MB/s" | "ms" | "µs" | "MB" | "kB" | "%" | "count" | "text";
  /** What a `text` row shows. */
  text?: string;
  goal?: Goal;
}

export interface ScenarioResult {
  measurements: Measurement[];
  /** Wrong rather than slow: lost, duplicated or reordered events. Fatal (exit 1). */
  failures: string[];
  /** Worth reading next to the numbers (failed calls, overload); not fatal. */
  notes: string[];
}

export function meets(value: number, goal: Goal): boolean {
  return goal.op === ">=" ? value >= goal.value : value <= goal.value;
}

/** The row that says which processes did the work (see `layouts` in report.ts). */
export function layoutRow(scenario: string, layout: string): Measurement {
  return { scenario, metric: "process layout", value: Number.NaN, unit: "text", text: layout };
}

/** The layout of a scenario that drives its tier's shared child: eventide's server (on Redis, its persister runs beside it), or a floor. */
export function childLayout(tier: Tier): string {
  if (isFloor(tier)) return `${tier} child`;
  return tier === "redis" ? "server child" : "server+persister child";
}

/** What a measured phase did, to divide its CPU by. */
export interface WorkDone {
  calls?: number;
  /** Events appended (when a call appends more than one). */
  appended?: number;
  /** Events delivered to tails. */
  delivered?: number;
}

/** The suffix of every server CPU row: the tables that compare tiers and check goals find the rows by it. */
export const serverCpuPer = { calls: "server CPU per call", appended: "server CPU per event", delivered: "server CPU per delivered event" } as const;

/**
 * The server's CPU per unit of work over a measured phase, its share of one
 * core, and the load generator's CPU per unit (the bench process's, or that
 * of the h2load processes it ran), so a reader sees which was the cheaper.
 */
export function cpuRows(scenario: string, label: string, spent: CpuSpent, work: WorkDone, generator: "bench process" | "h2load"): Measurement[] {
  const rows: Measurement[] = [];
  const perUnit = (metric: string, us: number, n: number | undefined) => {
    if (n) rows.push({ scenario, metric: `${label}: ${metric}`, value: us / n, unit: "µs" });
  };
  perUnit(serverCpuPer.calls, spent.server, work.calls);
  if (work.appended !== work.calls) perUnit(serverCpuPer.appended, spent.server, work.appended);
  perUnit(serverCpuPer.delivered, spent.server, work.delivered);
  rows.push({ scenario, metric: `${label}: server CPU, share of one core`, value: (spent.server / 1e6 / spent.wallSeconds) * 100, unit: "%" });
  const generatorUs = generator === "h2load" ? spent.spawned : spent.bench;
  const unit = work.delivered ? (["delivered event", work.delivered] as const) : (["call", work.calls] as const);
  perUnit(`${generator} CPU per ${unit[0]}`, generatorUs, unit[1]);
  return rows;
}

/** One note for a list of log warnings: how many, and each distinct message with its count. */
export function warningsNote(who: string, warnings: string[]): string[] {
  if (warnings.length === 0) return [];
  const counts = new Map<string, number>();
  for (const w of warnings) counts.set(w, (counts.get(w) ?? 0) + 1);
  const distinct = [...counts].slice(0, 5).map(([w, n]) => (n > 1 ? `${w} (×${n})` : w));
  return [`${who} logged ${warnings.length} warnings: ${distinct.join("; ")}${counts.size > 5 ? "; …" : ""}`];
}
