// The final table: one row per measurement and tier, with its goal if any.
import os from "node:os";
import { meets, type Measurement } from "./result.js";
import type { Tier } from "./server-under-test.js";

export interface Row extends Measurement {
  tier: Tier;
}

export function formatValue(m: Pick<Measurement, "value" | "unit">): string {
  if (!Number.isFinite(m.value)) return "n/a";
  switch (m.unit) {
    case "events/s":
      return `${Math.round(m.value).toLocaleString("en-US")} ev/s`;
    case "ms":
      return `${m.value.toFixed(m.value < 10 ? 2 : 1)} ms`;
    case "count":
      return Math.round(m.value).toLocaleString("en-US");
  }
}

/** The run's setting; the load average is the machine's before the run (others share it). */
export function environment(commandLine: string, redisUrl: string): string {
  return [
    `command: ${commandLine}`,
    `node ${process.version}, os.cpus().length = ${os.cpus().length} (${os.cpus()[0]?.model ?? "unknown"}), ` +
      `load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}, redis ${redisUrl}`,
  ].join("\n");
}

export function table(rows: Row[]): string {
  const header = ["scenario", "tier", "metric", "value", "goal", "ok?"];
  const cells = rows.map((r) => [
    r.scenario,
    r.tier,
    r.metric,
    formatValue(r),
    r.goal ? `${r.goal.op} ${formatValue({ value: r.goal.value, unit: r.unit })}` : "",
    r.goal ? (meets(r.value, r.goal) ? "yes" : "NO") : "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((s, i) => (i === 3 ? s.padStart(widths[i]) : s.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}
