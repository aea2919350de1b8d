// The command line and the scenarios it selects: full sizes by default,
// smaller ones with --quick (a smoke run of about 20 seconds).
import { parseArgs } from "node:util";
import type { ScenarioResult } from "./result.js";
import { appendLatency } from "./scenarios/append-latency.js";
import { appendThroughput } from "./scenarios/append-throughput.js";
import { tailLatency } from "./scenarios/tail-latency.js";
import type { Tier } from "./server-under-test.js";

export interface BenchOptions {
  tiers: Tier[];
  quick: boolean;
}

export interface Scenario {
  name: string;
  run(baseUrl: string): Promise<ScenarioResult>;
}

export const usage = `Usage: npm run bench -- [--tier redis|memory|both] [--quick]
  --tier   hot tier(s) to benchmark (default redis; REDIS_URL or redis://127.0.0.1:6379)
  --quick  smaller counts: a smoke run of about 20 seconds`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      tier: { type: "string", default: "redis" },
      quick: { type: "boolean", default: false },
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
  return { tiers: chosen, quick: values.quick };
}

export function scenarios(quick: boolean): Scenario[] {
  return [
    {
      name: "append batch×100",
      run: (baseUrl) =>
        appendThroughput(baseUrl, {
          name: "append batch×100",
          batchSize: 100,
          appenders: 16,
          threads: 8,
          connections: 4,
          events: quick ? 20_000 : 200_000,
          maxSeconds: quick ? 3 : 10,
          warmupEvents: quick ? 2_000 : 10_000,
          goal: { op: ">=", value: 50_000 },
        }),
    },
    {
      name: "append single",
      run: (baseUrl) =>
        appendThroughput(baseUrl, {
          name: "append single",
          batchSize: 1,
          appenders: 32,
          threads: 16,
          connections: 4,
          events: quick ? 5_000 : 100_000,
          maxSeconds: quick ? 2 : 8,
          warmupEvents: quick ? 500 : 2_000,
        }),
    },
    {
      name: "append latency",
      run: (baseUrl) =>
        appendLatency(baseUrl, {
          name: "append latency",
          warmup: quick ? 100 : 500,
          appends: quick ? 500 : 2_000,
          p50Goal: { op: "<=", value: 1 },
        }),
    },
    {
      name: "tail delivery",
      run: (baseUrl) =>
        tailLatency(baseUrl, {
          name: "tail delivery",
          threads: quick ? 20 : 100,
          tailersPerThread: 10,
          tailConnections: 10,
          appendConnections: 4,
          ratePerSecond: quick ? 400 : 2_000,
          seconds: quick ? 3 : 10,
          p99Goal: { op: "<=", value: 50 },
        }),
    },
  ];
}
