// What a scenario hands back: numbers for the table, correctness failures,
// and notes (what a reader of the numbers should know, e.g. an overload).

export interface Goal {
  op: ">=" | "<=";
  value: number;
}

export interface Measurement {
  scenario: string;
  metric: string;
  value: number;
  /** How to print `value`: a rate (events/s), a duration (ms) or a plain count. */
  unit: "events/s" | "ms" | "count";
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
