// A real eventide server in this process, on a random port of 127.0.0.1, over
// one hot tier (the warm tier, when the server has one, is embedded and in
// memory). On Redis every key carries a fresh prefix, deleted on close.
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { createClient, type RedisClientType } from "redis";
import { startServer } from "../server/app.js";
import { loadConfig } from "../server/config.js";
import { buildCore } from "../server/core.js";
import { openTiers } from "../server/tiers/open-tiers.js";

export type Tier = "redis" | "memory";

export interface ServerUnderTest {
  baseUrl: string;
  tier: Tier;
  /** After this much silence a followed tail polls storage: a missed live event arrives by then. */
  heartbeatMs: number;
  close(): Promise<void>;
}

/** `logLevel` other than "silent" sends the server's log to stderr (to see why calls fail). */
export async function startServerUnderTest(tier: Tier, redisUrl: string, logLevel = "silent"): Promise<ServerUnderTest> {
  const prefix = `bench-${randomBytes(4).toString("hex")}`;
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    REDIS_URL: tier === "redis" ? redisUrl : "",
    EVENTIDE_REDIS_PREFIX: prefix,
    // Embedded tiers stay in memory: no files under ./data.
    EVENTIDE_DATA_DIR: "memory:",
  });
  const log = pino({ level: logLevel }, pino.destination(2));
  const tiers = await openTiers(config, log);
  const server = await startServer(config, buildCore(config, tiers, log), log).catch(async (err) => {
    await tiers.close();
    throw err;
  });
  return {
    baseUrl: `http://127.0.0.1:${server.port}`,
    tier,
    heartbeatMs: config.heartbeatMs,
    async close() {
      try {
        await server.close();
        await tiers.close();
      } finally {
        if (tier === "redis") await deleteKeys(redisUrl, prefix);
      }
    },
  };
}

async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const client = createClient({ url: redisUrl }) as RedisClientType;
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 1000 })) {
      if (keys.length) await client.del(keys);
    }
  } finally {
    client.destroy();
  }
}
