// The real tiers (the machine's Redis and Postgres) under a fresh key prefix
// and schema, opened in-process for tests that run roles as child processes.
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { ExecutionContext } from "ava";
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

/**
 * Waits until Postgres has every thread of `expected` (thread id → last seq)
 * through its last seq, then checks each holds seqs 1..N exactly once.
 * Returns the events counted (0 after a failed wait).
 */
export async function expectPersistedOnce(t: ExecutionContext, real: RealTiers, expected: Map<string, number>, timeoutMs = 45_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await real.db.any<{ thread_id: string; last_seq: number }>("SELECT thread_id, last_seq FROM threads");
    if (rows.length === expected.size && rows.every((r) => r.last_seq === expected.get(r.thread_id))) break;
    if (Date.now() > deadline) {
      t.fail(`the persisters did not catch up: ${JSON.stringify(rows)} vs ${JSON.stringify([...expected])}`);
      return 0;
    }
    await delay(200);
  }
  const stats = await real.db.any<{ thread_id: string; n: number; distinct_seqs: number; min_seq: number; max_seq: number }>(
    `SELECT thread_id, count(*)::int AS n, count(DISTINCT seq)::int AS distinct_seqs, min(seq) AS min_seq, max(seq) AS max_seq
       FROM agent_events GROUP BY thread_id`,
  );
  t.is(stats.length, expected.size);
  let total = 0;
  for (const s of stats) {
    const n = expected.get(s.thread_id)!;
    total += n;
    t.deepEqual({ n: s.n, distinct: s.distinct_seqs, min: s.min_seq, max: s.max_seq }, { n, distinct: n, min: 1, max: n }, s.thread_id);
  }
  return total;
}
