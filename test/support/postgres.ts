// Each test file gets its own schema on the machine's Postgres (or its own
// in-memory PGlite), migrated, and dropped when the file ends.
import { randomUUID } from "node:crypto";
import { migrate } from "../../server/tiers/warm/postgres/migrate.js";
import { PostgresWarmStore } from "../../server/tiers/warm/postgres/postgres-warm-store.js";
import { startEmbeddedPostgres } from "../../server/tiers/warm/embedded-postgres.js";

export const databaseUrl = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test";

export type WarmKind = "postgres" | "pglite";
export const warmKinds: WarmKind[] = ["postgres", "pglite"];

export interface TestWarm {
  store: PostgresWarmStore;
  schema: string;
  /** pg-promise connection settings of this database (for child processes and raw checks). */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

/** A fresh migrated schema; with `until`, migrated only up to that version (see migrate). */
export async function testWarm(kind: WarmKind, until?: string): Promise<TestWarm> {
  const schema = `ettest_${randomUUID().slice(0, 8)}`;
  if (kind === "postgres") {
    const store = PostgresWarmStore.open({ connection: databaseUrl, schema, maxConnections: 4 });
    await migrate(store.db, schema, undefined, until);
    return {
      store,
      schema,
      env: { DATABASE_URL: databaseUrl, EVENTIDE_PG_SCHEMA: schema },
      async cleanup() {
        await store.db.none("DROP SCHEMA IF EXISTS $1:name CASCADE", [schema]);
        await store.close();
      },
    };
  }
  const embedded = await startEmbeddedPostgres(undefined);
  const store = PostgresWarmStore.open({ connection: embedded.connection, schema, maxConnections: 1 });
  await migrate(store.db, schema, undefined, until);
  return {
    store,
    schema,
    env: {},
    async cleanup() {
      await store.close();
      await embedded.stop();
    },
  };
}
