// Embedded Postgres for the no-configuration default: PGlite (Postgres in
// WebAssembly) behind its wire-protocol socket, so pg-promise and the same SQL
// reach it exactly as they reach a real server.
import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

export interface EmbeddedPostgres {
  connection: { host: string; port: number; database: string; user: string };
  stop(): Promise<void>;
}

/** `dataDir` keeps the database between runs; undefined keeps it in memory. */
export async function startEmbeddedPostgres(dataDir: string | undefined): Promise<EmbeddedPostgres> {
  if (dataDir) await mkdir(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir);
  // PGlite runs one query at a time: one connection, and pools of exactly one.
  const server = new PGLiteSocketServer({ db, port: 0, host: "127.0.0.1", maxConnections: 1 });
  await server.start();
  const port = Number(server.getServerConn().split(":").pop());
  return {
    connection: { host: "127.0.0.1", port, database: "postgres", user: "postgres" },
    async stop() {
      await server.stop();
      await db.close();
    },
  };
}
