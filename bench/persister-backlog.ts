// How much a server's persister still has to do: the consumer group's unread
// and unacknowledged entries over every partition log. Scenarios wait for it
// to drain, so one scenario's backlog does not load the next one's numbers.
import { createClient, type RedisClientType } from "redis";
import { loadConfig } from "../server/config.js";
import { HotKeys } from "../server/tiers/hot/redis/keys.js";
import { nowMs, sleep } from "./clock.js";
import type { TierEnv } from "./tier-env.js";

/** Partition-log entries (appends) not yet persisted; undefined on the memory tier (not visible from outside). */
export async function persisterBacklog(tiers: TierEnv): Promise<number | undefined> {
  if (tiers.tier !== "redis") return undefined;
  const config = loadConfig(tiers.env);
  const keys = new HotKeys(config.redisPrefix, config.partitions);
  const client = createClient({ url: config.redisUrl }) as RedisClientType;
  await client.connect();
  try {
    let backlog = 0;
    for (let p = 0; p < keys.partitions; p++) {
      const log = keys.partitionLog(p);
      if (!(await client.exists(log))) continue;
      const groups = await client.xInfoGroups(log);
      const group = groups.find((g) => g.name === "persister");
      if (!group) continue;
      // lag is null when Redis cannot tell (after trims); pending alone then.
      backlog += Number(group.pending) + Number(group.lag ?? 0);
    }
    return backlog;
  } finally {
    client.destroy();
  }
}

/** Waits until the backlog is empty; returns how long that took, or undefined on timeout. */
export async function waitForBacklog(tiers: TierEnv, timeoutMs: number): Promise<number | undefined> {
  const started = nowMs();
  for (;;) {
    const backlog = await persisterBacklog(tiers);
    if (!backlog) return nowMs() - started;
    if (nowMs() - started > timeoutMs) return undefined;
    await sleep(100);
  }
}
