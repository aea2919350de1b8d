// The real tiers (the machine's Redis and Postgres) under a fresh key prefix
// and schema, opened in-process for tests that run roles as child processes.
import { randomUUID } from "node:crypto";
import { pino } from "pino";
import { loadConfig } from "../../server/config.js";
import { buildCore } from "../../server/core.js";
import type { EventLog } from "../../server/log/event-log.js";
import { openTiers, type Tiers } from "../../server/tiers/open-tiers.js";
import type { PostgresWarmStore } from "../../server/tiers/warm/postgres/postgres-warm-store.js";
import { databaseUrl } from "./postgres.js";
import { deletePrefix, redisUrl } from "./redis.js";

export interface RealTiers {
  tiers: Tiers;
  log: EventLog;
  db: PostgresWarmStore["db"];
  /** The env that points a child role at the same tiers. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function openRealTiers(env: Record<string, string> = {}): Promise<RealTiers> {
  const id = randomUUID().slice(0, 8);
  const shared = {
    REDIS_URL: redisUrl,
    EVENTIDE_REDIS_PREFIX: `ettest-${id}`,
    DATABASE_URL: databaseUrl,
    EVENTIDE_PG_SCHEMA: `ettest_${id}`,
    EVENTIDE_PARTITIONS: "4",
    EVENTIDE_PERSIST_LEASE_MS: "1000",
    ...env,
  };
  const config = loadConfig({ ...shared, EVENTIDE_ROLES: "server" });
  const tiers = await openTiers(config, pino({ level: "silent" }));
  const db = (tiers.warm as PostgresWarmStore).db;
  return {
    tiers,
    log: buildCore(config, tiers, pino({ level: "silent" })).events,
    db,
    env: shared,
    async cleanup() {
      await db.none("DROP SCHEMA IF EXISTS $1:name CASCADE", [shared.EVENTIDE_PG_SCHEMA]);
      await tiers.close();
      await deletePrefix(shared.EVENTIDE_REDIS_PREFIX);
    },
  };
}
