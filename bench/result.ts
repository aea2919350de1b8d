// What a scenario hands back: numbers for the table and correctness failures.

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
  /** Anything that is wrong rather than slow (lost, duplicated or reordered events, failed calls). */
  failures: string[];
}

export function meets(value: number, goal: Goal): boolean {
  return goal.op === ">=" ? value >= goal.value : value <= goal.value;
}
