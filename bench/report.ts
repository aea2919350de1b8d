// The final table: one row per measurement and tier, with its goal if any.
import os from "node:os";
import { meets, type Measurement } from "./result.js";
import type { Services, Tier } from "./tier-env.js";

export interface Row extends Measurement {
  tier: Tier;
}

export function formatValue(m: Pick<Measurement, "value" | "unit" | "text">): string {
  if (m.unit === "text") return m.text ?? "";
  if (!Number.isFinite(m.value)) return "n/a";
  switch (m.unit) {
    case "events/s":
      return `${Math.round(m.value).toLocaleString("en-US")} ev/s`;
    case "turns/s":
      return `${Math.round(m.value).toLocaleString("en-US")} turns/s`;
    case "MB/s":
      return `${m.value.toFixed(m.value < 10 ? 2 : 1)} MB/s`;
    case "ms":
      return `${m.value.toFixed(m.value < 10 ? 2 : 1)} ms`;
    case "count":
      return Math.round(m.value).toLocaleString("en-US");
  }
}

/** The run's setting; the load average is the machine's before the run (others share it). */
export function environment(commandLine: string, services: Services): string {
  return [
    `command: ${commandLine}`,
    `node ${process.version}, os.cpus().length = ${os.cpus().length} (${os.cpus()[0]?.model ?? "unknown"}), ` +
      `load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`,
    `redis ${services.redisUrl}, postgres ${services.databaseUrl}`,
  ].join("\n");
}

/** What the `process layout` rows mean. */
export const layouts: Record<string, string> = {
  "server child":
    "the bench process drives a server child process (node --import tsx server/main.ts server,persister) over gRPC on 127.0.0.1",
  "floor child":
    "the same scenario against a bare Connect server child (node --import tsx bench/floor-server.ts): no storage, validation, interceptors or logs",
  "in-process":
    "the bench process itself runs hot.append and the Persister (and the Archiver) on the real tiers; no server",
  "in-process+child":
    "data prepared in-process as above, then read over gRPC from a server child process started on the same tiers",
  "own server child":
    "the scenario starts a server child of its own (server,persister) on fresh tiers, with API keys of two tenants; its client runs in the bench process",
  "own server children":
    "the scenario starts server children of its own on fresh tiers, one after the other (server,persister,dispatcher; " +
    "then server,persister,dispatcher,agent: the reference agent with EVENTIDE_AGENT_TOKEN_DELAY=0); its agents and clients run in the bench process",
};

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
