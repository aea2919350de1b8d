// What a scenario hands back: numbers for the table, correctness failures,
// and notes (what a reader of the numbers should know, e.g. an overload).
import type { Tier } from "./tier-env.js";

export interface Goal {
  op: ">=" | "<=";
  value: number;
}

export interface Measurement {
  scenario: string;
  metric: string;
  value: number;
  /** How to print `value`: a rate, a duration, a plain count, or `text` (a label such as the process layout). */
  unit: "events/s" | "turns/s" | "MB/s" | "ms" | "count" | "text";
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

/** The layout of a scenario that drives its tier's shared child: eventide's server, or the floor. */
export function childLayout(tier: Tier): string {
  return tier === "floor" ? "floor child" : "server child";
}

/** One note for a list of log warnings: how many, and each distinct message with its count. */
export function warningsNote(who: string, warnings: string[]): string[] {
  if (warnings.length === 0) return [];
  const counts = new Map<string, number>();
  for (const w of warnings) counts.set(w, (counts.get(w) ?? 0) + 1);
  const distinct = [...counts].slice(0, 5).map(([w, n]) => (n > 1 ? `${w} (×${n})` : w));
  return [`${who} logged ${warnings.length} warnings: ${distinct.join("; ")}${counts.size > 5 ? "; …" : ""}`];
}
