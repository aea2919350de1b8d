// Where a benchmark's data lives, as the environment that both a server child
// process and an in-process openTiers read: on tier redis a fresh Redis key
// prefix and Postgres schema of the machine's services (dropped afterwards);
// on tier memory the embedded tiers, in memory (gone with their process).
import { randomBytes } from "node:crypto";
import pgPromise from "pg-promise";
import { createClient, type RedisClientType } from "redis";

/**
 * The floors `--floor` adds: servers with no tiers at all doing the same work
 * minus storage, on bare node:http2 (the platform's floor), on grpc-js, and
 * on Connect (bench/floor-http2.ts, floor-grpc-js.ts, floor-server.ts).
 */
export const floorTiers = ["floor-http2", "floor-grpcjs", "floor-connect"] as const;
export type FloorTier = (typeof floorTiers)[number];
export type Tier = "redis" | "memory" | FloorTier;

export function isFloor(tier: Tier): tier is FloorTier {
  return (floorTiers as readonly string[]).includes(tier);
}

/** The services the benchmark talks to; all on 127.0.0.1. */
export interface Services {
  redisUrl: string;
  databaseUrl: string;
}

export interface TierEnv {
  tier: Tier;
  /** EVENTIDE_* and friends; never PORT, HOST or LOG_LEVEL. */
  env: Record<string, string>;
  /** Deletes the Redis keys and drops the Postgres schema (tier redis; nothing to do on memory). */
  drop(): Promise<void>;
}

/**
 * The bench calls without a key and opens up to 10,000 streams on 10 connections (idle tails): the
 * server's caps on open streams (a safety net against one careless client) would refuse most of them.
 */
const benchStreamLimits = { EVENTIDE_ANONYMOUS_MAX_STREAMS: "1000000", EVENTIDE_MAX_STREAMS_PER_CONNECTION: "100000" };

export function freshTierEnv(tier: Tier, services: Services, extra: Record<string, string> = {}): TierEnv {
  if (isFloor(tier)) return { tier, env: {}, drop: async () => {} };
  extra = { ...benchStreamLimits, ...extra };
  if (tier === "memory") {
    // Embedded PGlite in memory; the directory cold store goes under the OS temp dir.
    return { tier, env: { EVENTIDE_DATA_DIR: "memory:", ...extra }, drop: async () => {} };
  }
  const id = randomBytes(4).toString("hex");
  const prefix = `bench-${id}`;
  const schema = `bench_${id}`;
  return {
    tier,
    env: {
      REDIS_URL: services.redisUrl,
      EVENTIDE_REDIS_PREFIX: prefix,
      DATABASE_URL: services.databaseUrl,
      EVENTIDE_PG_SCHEMA: schema,
      // Nothing archives unless a scenario says so; then it passes S3_* (else a temp directory).
      EVENTIDE_DATA_DIR: "memory:",
      ...extra,
    },
    async drop() {
      await Promise.all([dropSchema(services.databaseUrl, schema), deleteKeys(services.redisUrl, prefix)]);
    },
  };
}

async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  const pgp = pgPromise({ noWarnings: true });
  try {
    await pgp(databaseUrl).none("DROP SCHEMA IF EXISTS $1:name CASCADE", [schema]);
  } finally {
    pgp.end();
  }
}

async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const client = createClient({ url: redisUrl }) as RedisClientType;
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
      // UNLINK frees big streams off Redis's main thread.
      if (keys.length) await client.unlink(keys);
    }
  } finally {
    client.destroy();
  }
}
