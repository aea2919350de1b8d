// The command line and the scenarios it selects: full sizes by default,
// smaller ones with --quick (a smoke run of about 20 seconds).
import { parseArgs } from "node:util";
import type { ScenarioResult } from "./result.js";
import { appendLatency } from "./scenarios/append-latency.js";
import { appendThroughput } from "./scenarios/append-throughput.js";
import { tailLatency } from "./scenarios/tail-latency.js";
import type { ServerUnderTest, Tier } from "./server-under-test.js";

export interface BenchOptions {
  tiers: Tier[];
  quick: boolean;
  /** Run only the scenarios whose key is listed (all when empty). */
  only: string[];
  /** The server's pino level; anything but silent goes to stderr. */
  logLevel: string;
  /** Appends per second of the tail scenario, instead of the plan's (to find where delivery keeps up). */
  tailRate?: number;
}

export interface Scenario {
  /** What --only takes. */
  key: string;
  name: string;
  run(server: ServerUnderTest): Promise<ScenarioResult>;
}

export const usage = `Usage: npm run bench -- [--tier redis|memory|both] [--quick] [--only batch,single,latency,tail]
                          [--tail-rate N] [--log-level warn]
  --tier       hot tier(s) to benchmark (default redis; REDIS_URL or redis://127.0.0.1:6379)
  --quick      smaller counts: a smoke run of about 20 seconds
  --only       run only these scenarios (e.g. to profile one: node --cpu-prof --import tsx bench/main.ts --only tail)
  --tail-rate  appends per second in the tail scenario (default 2000, 400 with --quick)
  --log-level  the server's log level (default silent), to stderr: shows why calls fail`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      tier: { type: "string", default: "redis" },
      quick: { type: "boolean", default: false },
      only: { type: "string", default: "" },
      "log-level": { type: "string", default: "silent" },
      "tail-rate": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  const tiers: Record<string, Tier[]> = { redis: ["redis"], memory: ["memory"], both: ["redis", "memory"] };
  const chosen = tiers[values.tier];
  if (!chosen) throw new Error(`--tier must be redis, memory or both, got ${JSON.stringify(values.tier)}`);
  const only = values.only.split(",").map((k) => k.trim()).filter(Boolean);
  const keys = scenarios({ quick: false }).map((s) => s.key);
  const unknown = only.filter((k) => !keys.includes(k));
  if (unknown.length) throw new Error(`--only takes ${keys.join(", ")}; got ${unknown.join(", ")}`);
  const tailRate = values["tail-rate"] === undefined ? undefined : Number(values["tail-rate"]);
  if (tailRate !== undefined && !(tailRate > 0)) throw new Error(`--tail-rate must be a positive number, got ${values["tail-rate"]}`);
  return { tiers: chosen, quick: values.quick, only, logLevel: values["log-level"], tailRate };
}

export function scenarios({ quick, tailRate }: Pick<BenchOptions, "quick" | "tailRate">): Scenario[] {
  return [
    {
      key: "batch",
      name: "append batch×100",
      run: (server) =>
        appendThroughput(server.baseUrl, {
          name: "append batch×100",
          batchSize: 100,
          appenders: 16,
          threads: 8,
          connections: 4,
          events: quick ? 20_000 : 200_000,
          maxSeconds: quick ? 3 : 10,
          warmupSeconds: quick ? 0.5 : 1,
          goal: { op: ">=", value: 50_000 },
        }),
    },
    {
      key: "single",
      name: "append single",
      run: (server) =>
        appendThroughput(server.baseUrl, {
          name: "append single",
          batchSize: 1,
          appenders: 32,
          threads: 16,
          connections: 4,
          events: quick ? 5_000 : 100_000,
          maxSeconds: quick ? 2 : 8,
          warmupSeconds: quick ? 0.5 : 1,
        }),
    },
    {
      key: "latency",
      name: "append latency",
      run: (server) =>
        appendLatency(server.baseUrl, {
          name: "append latency",
          warmup: quick ? 100 : 500,
          appends: quick ? 500 : 2_000,
          p50Goal: { op: "<=", value: 1 },
        }),
    },
    {
      key: "tail",
      name: "tail delivery",
      run: (server) =>
        tailLatency(server.baseUrl, {
          name: "tail delivery",
          threads: quick ? 20 : 100,
          tailersPerThread: 10,
          tailConnections: 10,
          appendConnections: 4,
          ratePerSecond: tailRate ?? (quick ? 400 : 2_000),
          seconds: quick ? 3 : 10,
          p99Goal: { op: "<=", value: 50 },
          heartbeatMs: server.heartbeatMs,
        }),
    },
  ];
}
