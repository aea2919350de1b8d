// Applies migrations/NNN_name.sql in order, once each, tracked in
// schema_migrations. An advisory lock makes concurrent start-ups safe: one
// process migrates, the others wait and then find nothing left to do.
import { readdir, readFile } from "node:fs/promises";
import type { IDatabase } from "pg-promise";

const migrationsDir = new URL("../../../../migrations/", import.meta.url);

export interface MigrationLog {
  info(obj: object, msg: string): void;
}

/** Applies what is not applied yet; with `until` (a version, e.g. "001_init"), only up to it (a database as an older release left it). */
export async function migrate(db: IDatabase<unknown>, schema: string, log?: MigrationLog, until?: string): Promise<string[]> {
  const files = (await readdir(migrationsDir))
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .filter((f) => until === undefined || f.replace(/\.sql$/, "") <= until);
  return db.tx("migrate", async (tx) => {
    await tx.one("SELECT pg_advisory_xact_lock(hashtext($1))", [`eventide-migrate:${schema}`]);
    await tx.none("CREATE SCHEMA IF NOT EXISTS $1:name", [schema]);
    await tx.none("SET LOCAL search_path TO $1:name", [schema]);
    await tx.none(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const done = new Set((await tx.any<{ version: string }>("SELECT version FROM schema_migrations")).map((r) => r.version));
    const applied: string[] = [];
    for (const file of files) {
      const version = file.replace(/\.sql$/, "");
      if (done.has(version)) continue;
      await tx.none(await readFile(new URL(file, migrationsDir), "utf8"));
      await tx.none("INSERT INTO schema_migrations (version) VALUES ($1)", [version]);
      log?.info({ version, schema }, "migration applied");
      applied.push(version);
    }
    return applied;
  });
}
