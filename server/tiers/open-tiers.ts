// Chooses each tier's implementation from the config: real services when
// their URLs are set, embedded ones otherwise.
import { createClient, type RedisClientType } from "redis";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { HotLog } from "./hot/hot-log.js";
import { MemoryHotLog } from "./hot/memory/memory-hot-log.js";
import { RedisHotLog } from "./hot/redis/redis-hot-log.js";

export interface Tiers {
  hot: HotLog;
  /** Which implementation each tier runs on, for the banner and /readyz. */
  describe: { hot: string };
  close(): Promise<void>;
}

export async function openTiers(config: Config, log: Logger): Promise<Tiers> {
  if (!config.redisUrl) {
    const hot = new MemoryHotLog({ idempotencyTtlSeconds: config.idempotencyTtlSeconds });
    return { hot, describe: { hot: "memory" }, close: () => hot.close() };
  }
  // No offline queue: while Redis is down, calls fail fast with UNAVAILABLE instead of hanging.
  const client = createClient({ url: config.redisUrl, disableOfflineQueue: true }) as RedisClientType;
  client.on("error", (err) => log.warn({ err: String(err) }, "redis connection error"));
  await client.connect();
  const hot = await RedisHotLog.open({
    client,
    prefix: config.redisPrefix,
    partitions: config.partitions,
    idempotencyTtlSeconds: config.idempotencyTtlSeconds,
    followLive: true,
    log,
  });
  return {
    hot,
    describe: { hot: `redis (${redact(config.redisUrl)}, prefix ${config.redisPrefix}, ${config.partitions} partitions)` },
    async close() {
      await hot.close();
      client.destroy();
    },
  };
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
