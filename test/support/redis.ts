// Each test file gets its own key prefix on the machine's Redis, so files run
// in parallel without seeing each other's keys; the keys go when the file ends.
import { randomUUID } from "node:crypto";
import { createClient, type RedisClientType } from "redis";

export const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379";

/** A connected client of the test Redis; patient on connect, since the suite loads both cores. */
export async function connectRedis(): Promise<RedisClientType> {
  const client = createClient({ url: redisUrl, socket: { connectTimeout: 30_000 } }) as RedisClientType;
  await client.connect();
  return client;
}

export async function testRedis(): Promise<{ client: RedisClientType; prefix: string; cleanup(): Promise<void> }> {
  const client = await connectRedis();
  const prefix = `ettest-${randomUUID().slice(0, 8)}`;
  return {
    client,
    prefix,
    async cleanup() {
      await deleteKeys(client, prefix);
      client.destroy();
    },
  };
}

export async function deleteKeys(client: RedisClientType, prefix: string): Promise<void> {
  for await (const keys of client.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) {
    if (keys.length) await client.del(keys);
  }
}

/** Deletes a prefix's keys with a short-lived connection of its own. */
export async function deletePrefix(prefix: string): Promise<void> {
  const client = await connectRedis();
  await deleteKeys(client, prefix);
  client.destroy();
}
