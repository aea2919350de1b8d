// The final tables: one row per measurement and tier, with its goal if any;
// then eventide's server CPU per unit of work beside the floors'.
import os from "node:os";
import { h2loadVersion } from "./h2load.js";
import { meets, type Measurement, serverCpuPer } from "./result.js";
import { isFloor, type Services, type Tier } from "./tier-env.js";

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
    case "µs":
      return `${m.value.toFixed(m.value < 10 ? 2 : m.value < 100 ? 1 : 0)} µs`;
    case "MB":
      return `${m.value.toFixed(1)} MB`;
    case "kB":
      return `${m.value.toFixed(1)} kB`;
    case "%":
      return `${m.value.toFixed(0)} %`;
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
    // Heap settings (--max-semi-space-size=…) reach the server children too: they inherit the environment.
    ...(process.env.NODE_OPTIONS ? [`NODE_OPTIONS=${process.env.NODE_OPTIONS} (the server children inherit it)`] : []),
    `redis ${services.redisUrl}, postgres ${services.databaseUrl}`,
    `append load generator: ${h2loadVersion() ?? "h2load not installed (apt-get install nghttp2-client): the raw node:http2 generator instead"}`,
  ].join("\n");
}

/** What the `process layout` rows mean. */
export const layouts: Record<string, string> = {
  "server child":
    "the bench process (or h2load) drives a server child process (node --import tsx server/main.ts server) over gRPC on 127.0.0.1; " +
    "its persister runs in a child of its own (server/main.ts persister), so the server's CPU is the server role's",
  "server+persister child":
    "the bench process (or h2load) drives a server child process (node --import tsx server/main.ts server,persister) over gRPC on 127.0.0.1",
  "floor-http2 child":
    "the same load against a bare node:http2 server child with hand-written gRPC framing (bench/floor-http2.ts): the work minus storage, the platform's floor",
  "floor-grpcjs child":
    "the same load against a bare @grpc/grpc-js server child (bench/floor-grpc-js.ts) doing the same work as floor-http2",
  "floor-connect child":
    "the same load against a bare Connect server child (bench/floor-server.ts): no storage, validation, interceptors or logs",
  "in-process":
    "the bench process itself runs hot.append and the Persister (and the Archiver) on the real tiers; no server",
  "in-process+child":
    "data prepared in-process as above, then read over gRPC from a server child process started on the same tiers",
  "own child":
    "the scenario starts a child of its own for this scenario alone (on Redis the server role only, or the floor) on fresh tiers; its client runs in the bench process",
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
  return render(header, cells, [3]);
}

/** Columns padded to their widest cell; the `right` ones (numbers) aligned right. */
export function render(header: string[], cells: string[][], right: number[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((s, i) => (right.includes(i) ? s.padStart(widths[i]) : s.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...cells.map(line)].join("\n");
}

/** A tier's row of `scenario` and `metric`, if the run has one. */
export function rowOf(rows: Row[], tier: Tier, scenario: string, metric: string): Row | undefined {
  return rows.find((r) => r.tier === tier && r.scenario === scenario && r.metric === metric);
}

const perUnit = Object.values(serverCpuPer) as string[];
const floorColumns: [Tier, string][] = [
  ["floor-http2", "node:http2 floor"],
  ["floor-grpcjs", "grpc-js floor"],
  ["floor-connect", "Connect floor"],
];

/**
 * Each server CPU per unit of work eventide spent in the run, beside what
 * the floors spent on the same load, and its ratio to the node:http2 (the
 * platform's) and grpc-js floors. Empty when the run has no such row.
 */
export function cpuComparison(rows: Row[]): string {
  const measured = rows.filter((r) => !isFloor(r.tier) && r.unit === "µs" && perUnit.some((u) => r.metric.endsWith(u)));
  if (measured.length === 0) return "";
  const us = (r: Row | undefined) => (r ? formatValue(r) : "");
  const ratio = (r: Row, floor: Row | undefined) => (floor && floor.value > 0 ? `${(r.value / floor.value).toFixed(1)}×` : "");
  const cells = measured.map((r) => {
    const floors = floorColumns.map(([tier]) => rowOf(rows, tier, r.scenario, r.metric));
    return [r.scenario, r.metric, r.tier, us(r), ...floors.map(us), ratio(r, floors[0]), ratio(r, floors[1])];
  });
  const header = ["scenario", "metric", "tier", "eventide", ...floorColumns.map(([, name]) => name), "÷ node:http2", "÷ grpc-js"];
  return render(header, cells, [3, 4, 5, 6, 7, 8]);
}
