// A real eventide server in this process, on a random port of 127.0.0.1, over
// one hot tier. On Redis every key carries a fresh prefix, deleted on close.
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { createClient, type RedisClientType } from "redis";
import { startServer } from "../server/app.js";
import { loadConfig } from "../server/config.js";
import { openTiers } from "../server/tiers/open-tiers.js";

export type Tier = "redis" | "memory";

export interface ServerUnderTest {
  baseUrl: string;
  tier: Tier;
  close(): Promise<void>;
}

export async function startServerUnderTest(tier: Tier, redisUrl: string): Promise<ServerUnderTest> {
  const prefix = `bench-${randomBytes(4).toString("hex")}`;
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    REDIS_URL: tier === "redis" ? redisUrl : "",
    EVENTIDE_REDIS_PREFIX: prefix,
  });
  const log = pino({ level: "silent" });
  const tiers = await openTiers(config, log);
  const server = await startServer(config, tiers, log).catch(async (err) => {
    await tiers.close();
    throw err;
  });
  return {
    baseUrl: `http://127.0.0.1:${server.port}`,
    tier,
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
