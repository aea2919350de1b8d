// The command line and the scenarios it selects: full sizes by default,
// smaller ones with --quick (a smoke run of about a minute).
import { parseArgs } from "node:util";
import { fixedPayload, kibPayload, randomPayloads } from "./payloads.js";
import { childLayout, layoutRow, type ScenarioResult } from "./result.js";
import { appendLatency } from "./scenarios/append-latency.js";
import { appendLoad } from "./scenarios/append-load.js";
import { appendThroughput } from "./scenarios/append-throughput.js";
import { coldReplay } from "./scenarios/cold-replay.js";
import { dispatchBench } from "./scenarios/dispatch.js";
import { idleTails } from "./scenarios/idle-tails.js";
import { redisRoundTripFloor } from "./redis-floor.js";
import { persistLag } from "./scenarios/persist-lag.js";
import { persistThroughput } from "./scenarios/persist-throughput.js";
import { warmReplay } from "./scenarios/replay.js";
import { tailLatency } from "./scenarios/tail-latency.js";
import { tenantLookups } from "./scenarios/tenant-lookups.js";
import type { ServerUnderTest } from "./server-under-test.js";
import { floorTiers, isFloor, type Services, type Tier } from "./tier-env.js";

export interface BenchOptions {
  tiers: Tier[];
  quick: boolean;
  /** Run only the scenarios whose key is listed (all when empty). */
  only: string[];
  /** The server's pino level (and the in-process roles'); warnings go to stderr. */
  logLevel: string;
  /** Appends per second of the tail scenario, instead of the plan's (to find where delivery keeps up). */
  tailRate?: number;
  /** Where server children write V8 CPU profiles (--profile). */
  profileDir?: string;
  /** Events of the cold-replay thread (90% of them archived), instead of the plan's. */
  coldEvents?: number;
}

/** What a scenario gets: the tier's shared server child, and the services for tiers of its own. */
export interface BenchContext {
  tier: Tier;
  server: ServerUnderTest;
  services: Services;
  logLevel: string;
  profileDir?: string;
}

export interface Scenario {
  /** What --only takes. */
  key: string;
  name: string;
  /** Also runs against the floors (`--floor`): it only calls the RPCs the floor servers answer. */
  floor?: boolean;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}

export const profileDir = "/tmp/prof";

export const usage = `Usage: npm run bench -- [--tier redis|memory|both] [--quick] [--floor]
                          [--only idle,latency,single,batch,tail,replay,persist,lag,dispatch,cold-replay,lookup]
                          [--tail-rate N] [--cold-events N] [--log-level warn] [--profile]
  --tier       tier(s) to benchmark (default redis: REDIS_URL or redis://127.0.0.1:6379, DATABASE_URL or
               postgres://postgres@127.0.0.1:5432/test; memory: embedded tiers in memory)
  --quick      smaller counts: a smoke run of about a minute
  --floor      also run idle, latency, single, batch, tail and replay, with the same load generators, against
               three floors doing the same work minus storage: a bare node:http2 server with hand-written gRPC
               framing (the platform's floor, bench/floor-http2.ts), a bare grpc-js one (bench/floor-grpc-js.ts)
               and a bare Connect one (bench/floor-server.ts); the tables then give eventide's server CPU as a
               ratio to the node:http2 and grpc-js floors'
  --only       run only these scenarios; dispatch starts server children of its own: 10 bench agents take
               2000 turns (400 with --quick), then the reference agent (token delay 0) answers 200 turns
               one at a time (50 with --quick); lookup starts a server child with two tenants' keys and times
               GetThread, GetTurn and GetEvent of an own, another tenant's and an unknown id (medians)
  --tail-rate  appends per second in the tail scenario (default 2000, 400 with --quick)
  --cold-events  events of the cold-replay thread, 90% of them archived (default 200000, 100000 with --quick;
               --cold-events 1000000 takes about 5 minutes on a 2-core machine)
  --log-level  the server's log level (default warn), to stderr: shows why calls fail
  --profile    server children write V8 CPU profiles to ${profileDir} when they exit (node --cpu-prof);
               to profile the in-process scenarios (persist, lag): node --cpu-prof --import tsx bench/main.ts --only persist
The server scenarios read the server child's CPU from /proc before and after their measured phase and print it
per call, per appended and per delivered event, with the load generator's own. The append loads run h2load
(Debian's nghttp2-client) when it is on PATH, else a raw node:http2 generator; tails use a raw node:http2 client.
On tier redis the server child runs the server role only, its persister in a child of its own.`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      tier: { type: "string", default: "redis" },
      quick: { type: "boolean", default: false },
      only: { type: "string", default: "" },
      "log-level": { type: "string", default: "warn" },
      "tail-rate": { type: "string" },
      "cold-events": { type: "string" },
      profile: { type: "boolean", default: false },
      floor: { type: "boolean", default: false },
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
  const coldEvents = values["cold-events"] === undefined ? undefined : Number(values["cold-events"]);
  if (coldEvents !== undefined && !(Number.isInteger(coldEvents) && coldEvents >= 10)) {
    throw new Error(`--cold-events must be an integer of at least 10, got ${values["cold-events"]}`);
  }
  return {
    tiers: values.floor ? [...chosen, ...floorTiers] : chosen,
    quick: values.quick,
    only,
    logLevel: values["log-level"],
    tailRate,
    coldEvents,
    profileDir: values.profile ? profileDir : undefined,
  };
}

/**
 * The RPC scenarios drive the shared server child (or a floor's): say so in
 * the table. Their parts run one after the other; the parts that use
 * Connect's client (the typical client's figures) run on eventide only.
 */
async function onServerChild(name: string, tier: Tier, parts: { lean: () => Promise<ScenarioResult>; connect?: () => Promise<ScenarioResult> }): Promise<ScenarioResult> {
  const results = [await parts.lean()];
  if (parts.connect && !isFloor(tier)) results.push(await parts.connect());
  return {
    measurements: [layoutRow(name, childLayout(tier)), ...results.flatMap((r) => r.measurements)],
    failures: results.flatMap((r) => r.failures),
    notes: results.flatMap((r) => r.notes),
  };
}

/** 200 bytes of JSON, different for every event: the replay scenarios' events. */
const replayPayload = randomPayloads(200);

/** The tail scenario's tailers per thread: each append is delivered this many times. */
export const tailersPerThread = 10;

/** The scenarios' names, as the goals (bench/goals.ts) find their rows. */
export const scenarioNames = {
  idle: "idle followed tails",
  latency: "append latency 1 KiB",
  single: "append single 1 KiB",
  batch: "append batch 100 × 1 KiB",
  tail: "tail fan-out",
  replay: "warm replay 200 B",
  coldReplay: "cold replay 200 B",
  dispatch: "turn dispatch",
} as const;

export function scenarios({ quick, tailRate, coldEvents }: Pick<BenchOptions, "quick" | "tailRate" | "coldEvents">): Scenario[] {
  return [
    {
      key: "idle",
      name: scenarioNames.idle,
      floor: true,
      run: ({ tier, services, logLevel, profileDir }) =>
        idleTails({
          name: scenarioNames.idle,
          tier,
          services,
          logLevel,
          profileDir,
          threads: quick ? 200 : 1_000,
          tailsPerThread: 10,
          connections: quick ? 4 : 10,
          opening: 500,
          idleSeconds: quick ? 1 : 45,
          rssGoal: { op: "<=", value: 300 },
        }),
    },
    {
      key: "latency",
      name: scenarioNames.latency,
      floor: true,
      run: ({ server, tier }) =>
        onServerChild(scenarioNames.latency, tier, {
          lean: () =>
            appendLatency(server, {
              name: scenarioNames.latency,
              client: "node:http2",
              warmup: quick ? 200 : 500,
              appends: quick ? 1_000 : 5_000,
              p50Goal: { op: "<=", value: 1 },
            }),
          connect: () =>
            appendLatency(server, { name: scenarioNames.latency, client: "Connect", warmup: quick ? 100 : 500, appends: quick ? 500 : 2_000 }),
        }),
    },
    {
      key: "single",
      name: scenarioNames.single,
      floor: true,
      run: ({ server, tier }) =>
        onServerChild(scenarioNames.single, tier, {
          lean: () =>
            appendLoad(server, {
              name: scenarioNames.single,
              batchSize: 1,
              connections: 4,
              streams: 16,
              calls: quick ? 4_000 : 30_000,
              warmupCalls: quick ? 800 : 3_000,
            }),
          connect: () =>
            appendThroughput(server, {
              name: scenarioNames.single,
              batchSize: 1,
              appenders: 32,
              threads: 16,
              connections: 4,
              events: quick ? 5_000 : 100_000,
              maxSeconds: quick ? 2 : 8,
              warmupSeconds: quick ? 0.5 : 1,
            }),
        }),
    },
    {
      key: "batch",
      name: scenarioNames.batch,
      floor: true,
      run: ({ server, tier }) =>
        onServerChild(scenarioNames.batch, tier, {
          lean: () =>
            appendLoad(server, {
              name: scenarioNames.batch,
              batchSize: 100,
              connections: 4,
              streams: 4,
              calls: quick ? 200 : 2_000,
              warmupCalls: quick ? 40 : 200,
              goal: { op: ">=", value: 50_000 },
            }),
          connect: () =>
            appendThroughput(server, {
              name: scenarioNames.batch,
              batchSize: 100,
              appenders: 16,
              threads: 8,
              connections: 4,
              events: quick ? 20_000 : 200_000,
              maxSeconds: quick ? 3 : 10,
              warmupSeconds: quick ? 0.5 : 1,
            }),
        }),
    },
    {
      key: "tail",
      name: scenarioNames.tail,
      floor: true,
      run: async ({ server, tier, services }) => {
        const params = {
          name: scenarioNames.tail,
          threads: quick ? 20 : 100,
          tailersPerThread,
          tailConnections: 10,
          appendConnections: 4,
          ratePerSecond: tailRate ?? (quick ? 400 : 2_000),
          seconds: quick ? 2 : 10,
          warmupSeconds: quick ? 1 : 3,
          p99Goal: { op: "<=", value: 50 },
          heartbeatMs: server.heartbeatMs,
        } as const;
        const result = await onServerChild(scenarioNames.tail, tier, {
          lean: () => tailLatency(server, { ...params, client: "wire", cpuGoal: { op: "<=", value: 20 } }),
          connect: () => tailLatency(server, { ...params, client: "Connect" }),
        });
        // The platform's share of each append on the Redis tier, same rate, same run.
        if (tier === "redis") {
          const floor = { scenario: params.name, redisUrl: services.redisUrl, ratePerSecond: params.ratePerSecond, seconds: Math.min(5, params.seconds), payloadBytes: 1024 };
          result.measurements.push(...(await redisRoundTripFloor(floor)));
        }
        return result;
      },
    },
    {
      key: "persist",
      name: "persist backlog 1 KiB",
      run: ({ tier, services, logLevel }) =>
        persistThroughput({
          name: "persist backlog 1 KiB",
          tier,
          services,
          logLevel,
          // PGlite (tier memory) is far slower than Postgres: a smaller backlog.
          events: tier === "memory" ? (quick ? 10_000 : 50_000) : quick ? 50_000 : 200_000,
          threads: 50,
          seedBatch: 1_000,
          seedConcurrency: 4,
          payload: fixedPayload(kibPayload),
          timeoutSeconds: quick ? 40 : 90,
          // The goal is Postgres's; PGlite is reported without one.
          goal: tier === "redis" ? { op: ">=", value: 50_000 } : undefined,
        }),
    },
    {
      key: "lag",
      name: "persist lag 1 KiB",
      run: ({ tier, services, logLevel }) =>
        persistLag({
          name: "persist lag 1 KiB",
          tier,
          services,
          logLevel,
          threads: 20,
          appendsPerSecond: 100,
          batch: 100,
          seconds: quick ? 3 : 10,
          payload: fixedPayload(kibPayload),
          p99Goal: tier === "redis" ? { op: "<=", value: 1_000 } : undefined,
        }),
    },
    {
      key: "replay",
      name: scenarioNames.replay,
      floor: true,
      run: ({ server, logLevel }) =>
        warmReplay({
          name: scenarioNames.replay,
          server,
          logLevel,
          events: quick ? 20_000 : 100_000,
          payload: replayPayload,
          persistTimeoutSeconds: 60,
          goal: { op: ">=", value: 100_000 },
        }),
    },
    {
      key: "cold-replay",
      name: scenarioNames.coldReplay,
      run: ({ tier, server, services, logLevel, profileDir }) => {
        // 200,000 by default rather than a million: at this machine's persist, archive and replay
        // rates (~10k events/s each) a million takes five minutes on its own.
        const events = coldEvents ?? (tier === "memory" ? (quick ? 20_000 : 100_000) : quick ? 100_000 : 200_000);
        return coldReplay({
          name: scenarioNames.coldReplay,
          server,
          services,
          logLevel,
          profileDir,
          events,
          archiveUpTo: Math.floor(events * 0.9),
          payload: replayPayload,
          persistTimeoutSeconds: quick ? 60 : 120,
          goal: { op: ">=", value: 100_000 },
        });
      },
    },
    {
      key: "dispatch",
      name: scenarioNames.dispatch,
      run: ({ tier, services, logLevel, profileDir }) =>
        dispatchBench({
          name: scenarioNames.dispatch,
          tier,
          services,
          logLevel,
          profileDir,
          agents: 10,
          maxInFlight: 4,
          warmupTurns: quick ? 40 : 200,
          turns: quick ? 400 : 2_000,
          submitConcurrency: 32,
          submitConnections: 4,
          firstDeltaWarmup: quick ? 5 : 20,
          firstDeltaTurns: quick ? 50 : 200,
        }),
    },
    {
      key: "lookup",
      name: "lookup by id, 2 tenants",
      run: ({ tier, services, logLevel, profileDir }) =>
        tenantLookups({
          name: "lookup by id, 2 tenants",
          tier,
          services,
          logLevel,
          profileDir,
          warmupRounds: quick ? 50 : 200,
          rounds: quick ? 300 : 1_000,
        }),
    },
  ];
}
