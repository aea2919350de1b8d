// Chooses each tier's implementation from the config: real services when
// their URLs are set, embedded ones otherwise.
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { CallerLimits } from "../limits/caller-limits.js";
import { MemoryCallerLimits } from "../limits/memory-caller-limits.js";
import { RedisCallerLimits } from "../limits/redis-caller-limits.js";
import type { ColdStore } from "./cold/cold-store.js";
import { DirectoryColdStore } from "./cold/directory/directory-cold-store.js";
import type { HotLog, PartitionLeases, PersistFeed } from "./hot/hot-log.js";
import { MemoryHotLog, MemoryPartitionLeases } from "./hot/memory/memory-hot-log.js";
import { ClusterRedis, type HotRedis, SingleNodeRedis } from "./hot/redis/hot-redis.js";
import { RedisHotLog } from "./hot/redis/redis-hot-log.js";
import { RedisTurnDispatch } from "./hot/redis/redis-turn-dispatch.js";
import { MemoryTurnDispatch } from "./hot/memory/memory-turn-dispatch.js";
import type { TurnDispatch } from "./hot/turn-dispatch.js";
import { RedisPartitionLeases } from "./hot/redis/redis-partition-leases.js";
import { RedisPersistFeed } from "./hot/redis/redis-persist-feed.js";
import { migrate } from "./warm/postgres/migrate.js";
import { PostgresWarmStore } from "./warm/postgres/postgres-warm-store.js";
import type { WarmStore } from "./warm/warm-store.js";

/** EVENTIDE_DATA_DIR value that keeps embedded tiers in memory only (tests). */
export const inMemory = "memory:";

export interface Tiers {
  hot: HotLog;
  warm: WarmStore;
  /**
   * The persister's side of the hot tier: a feed per lane (config.persistLanes
   * on Redis, each with a connection of its own for its blocking reads; one on
   * the memory tier, whose PGlite commits one transaction at a time anyway).
   */
  feeds: PersistFeed[];
  leases: PartitionLeases;
  /** Turn queues and leases, beside the hot log. */
  dispatch: TurnDispatch;
  /** Per-key limits, counted where the hot tier lives: in Redis across servers, or in this process. */
  limits: CallerLimits;
  cold: ColdStore;
  /** Which implementation each tier runs on, for the banner and logs. */
  describe: { hot: string; warm: string; cold: string };
  /** Pings every tier (PING, SELECT 1, HeadBucket or a directory check): what /readyz reports. */
  checkReady(): Promise<TierReadiness>;
  close(): Promise<void>;
}

export type TierName = "hot" | "warm" | "cold";

export interface TierCheck {
  state: "ok" | "unreachable" | "timeout";
  /** Why not; for logs only (it may name hosts). */
  error?: string;
}

export interface TierReadiness {
  ready: boolean;
  tiers: Partial<Record<TierName, TierCheck>>;
}

/** A tier that has not answered a ping in this long counts as down (a busy process answers well within it). */
const pingTimeoutMs = 2_000;

/** Pings the tiers at once, each bounded: a hung connection must not hang a probe. */
export async function checkTiers(stores: Partial<Record<TierName, { ping(): Promise<void> }>>, timeoutMs = pingTimeoutMs): Promise<TierReadiness> {
  const checks = await Promise.all(
    Object.entries(stores).map(async ([name, store]): Promise<[string, TierCheck]> => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<TierCheck>((resolve) => {
        timer = setTimeout(() => resolve({ state: "timeout", error: `no answer in ${timeoutMs} ms` }), timeoutMs);
      });
      const pinged = store.ping().then(
        (): TierCheck => ({ state: "ok" }),
        (err): TierCheck => ({ state: "unreachable", error: String(err) }),
      );
      try {
        return [name, await Promise.race([pinged, timedOut])];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return { ready: checks.every(([, c]) => c.state === "ok"), tiers: Object.fromEntries(checks) };
}

export async function openTiers(config: Config, log: Logger): Promise<Tiers> {
  const closers: (() => Promise<void>)[] = [];
  try {
    const warm = await openWarm(config, log, closers);
    const hot = await openHot(config, log, closers);
    const cold = await openCold(config);
    return {
      ...hot,
      ...warm,
      cold,
      describe: { hot: hot.describe, warm: warm.describe, cold: cold.describe },
      checkReady: () => checkTiers({ hot: hot.hot, warm: warm.warm, cold }),
      async close() {
        for (const close of closers.reverse()) await close();
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => {});
    throw err;
  }
}

async function openHot(config: Config, log: Logger, closers: (() => Promise<void>)[]) {
  if (!config.redisUrl && config.redisClusterNodes.length === 0) {
    const hot = new MemoryHotLog({ idempotencyTtlSeconds: config.idempotencyTtlSeconds });
    const dispatch = new MemoryTurnDispatch(hot, config.dispatch);
    closers.push(() => hot.close(), () => dispatch.close());
    const limits = new MemoryCallerLimits(config.limits);
    return { hot, dispatch: dispatch as TurnDispatch, limits: limits as CallerLimits, feeds: [hot as PersistFeed], leases: new MemoryPartitionLeases() as PartitionLeases, describe: "memory" };
  }
  const onError = (err: unknown) => log.warn({ err: String(err) }, "redis connection error");
  const redis: HotRedis = config.redisUrl
    ? await SingleNodeRedis.open(config.redisUrl, `redis (${redact(config.redisUrl)}`, onError)
    : await ClusterRedis.open(config.redisClusterNodes, onError);
  closers.push(() => redis.close());
  const hot = await RedisHotLog.open({
    redis,
    prefix: config.redisPrefix,
    partitions: config.partitions,
    idempotencyTtlSeconds: config.idempotencyTtlSeconds,
    followLive: config.roles.includes("server"),
    log,
    waitReplicas: config.redisWaitReplicas,
    waitTimeoutMs: config.redisWaitTimeoutMs,
  });
  closers.push(() => hot.close());
  // Servers listen for dispatch notices: their agents' feeds wake on them.
  const dispatch = await RedisTurnDispatch.open(redis, hot, config.dispatch, config.roles.includes("server"));
  closers.push(() => dispatch.close());
  const limits = new RedisCallerLimits({ client: redis.commands, prefix: config.redisPrefix, settings: config.limits, log });
  closers.push(async () => limits.close());
  const feeds: PersistFeed[] = [];
  for (let lane = 0; lane < config.persistLanes; lane++) {
    const feed = new RedisPersistFeed(redis, hot.keys, config.persistLingerMs);
    closers.push(async () => feed.close());
    feeds.push(feed);
  }
  return {
    hot: hot as HotLog,
    dispatch: dispatch as TurnDispatch,
    limits: limits as CallerLimits,
    feeds,
    leases: new RedisPartitionLeases(redis.commands, hot.keys) as PartitionLeases,
    describe: `${redis.describe}, prefix ${config.redisPrefix}, ${config.partitions} partitions)`,
  };
}

export async function openWarm(config: Config, log: Logger, closers: (() => Promise<void>)[]) {
  let store: PostgresWarmStore;
  let describe: string;
  if (config.databaseUrl) {
    store = PostgresWarmStore.open({ connection: config.databaseUrl, schema: config.pgSchema, maxConnections: 10 });
    describe = `postgres (${redact(config.databaseUrl)}, schema ${config.pgSchema})`;
  } else {
    const dir = config.dataDir === inMemory ? undefined : join(config.dataDir, "pg");
    // Loaded only here: PGlite alone adds ~50 MB to a process's memory, which a deployment on Postgres never needs.
    const { startEmbeddedPostgres } = await import("./warm/embedded-postgres.js");
    const embedded = await startEmbeddedPostgres(dir);
    closers.push(() => embedded.stop());
    store = PostgresWarmStore.open({ connection: embedded.connection, schema: config.pgSchema, maxConnections: 1 });
    describe = `embedded postgres (PGlite, ${dir ?? "in memory"})`;
  }
  closers.push(() => store.close());
  await migrate(store.db, config.pgSchema, log);
  return { warm: store as WarmStore, describe };
}

export async function openCold(config: Config): Promise<ColdStore> {
  if (!config.s3.bucket) {
    const dir = config.dataDir === inMemory ? join(tmpdir(), `eventide-archive-${process.pid}`) : join(config.dataDir, "archive");
    return new DirectoryColdStore(dir);
  }
  // Loaded only here: the AWS SDK adds ~30 MB to a process's memory, which the directory store does not need.
  const { S3ColdStore } = await import("./cold/s3/s3-cold-store.js");
  const store = new S3ColdStore({
    endpoint: config.s3.endpoint,
    bucket: config.s3.bucket,
    region: config.s3.region,
    accessKeyId: config.s3.accessKeyId || undefined,
    secretAccessKey: config.s3.secretAccessKey || undefined,
    forcePathStyle: config.s3.forcePathStyle,
  });
  return store;
}

/** URLs may carry passwords; they never reach logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}
