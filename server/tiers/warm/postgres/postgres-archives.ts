// The warm tier's side of archiving and erasure: event_archives rows, the
// archiver's policy queries, and deleting a thread's rows behind a tombstone.
import type { IDatabase } from "pg-promise";
import type { ArchiveRecord } from "../warm-store.js";

type Db = IDatabase<unknown>;

export async function findArchive(db: Db, threadId: string, seq: number): Promise<ArchiveRecord | undefined> {
  const row = await db.oneOrNone(
    "SELECT * FROM event_archives WHERE thread_id = $1 AND from_seq <= $2 AND to_seq >= $2",
    [threadId, seq],
  );
  return row ? archiveFromRow(row) : undefined;
}

export async function listArchives(db: Db, threadId: string): Promise<ArchiveRecord[]> {
  return (await db.any("SELECT * FROM event_archives WHERE thread_id = $1 ORDER BY from_seq", [threadId])).map(archiveFromRow);
}

export async function getArchive(db: Db, archiveId: string): Promise<ArchiveRecord | undefined> {
  const row = await db.oneOrNone("SELECT * FROM event_archives WHERE archive_id = $1", [archiveId]);
  return row ? archiveFromRow(row) : undefined;
}

export async function commitArchive(db: Db, a: ArchiveRecord): Promise<boolean> {
  return db.tx("archive", async (tx) => {
    const inserted = await tx.oneOrNone(
      `INSERT INTO event_archives (archive_id, thread_id, tenant_id, from_seq, to_seq, object_key, event_count, bytes, sha256, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (thread_id, from_seq) DO NOTHING RETURNING archive_id`,
      [a.archiveId, a.threadId, a.tenantId, a.fromSeq, a.toSeq, a.objectKey, a.eventCount, a.bytes, a.sha256, new Date(a.createdAt)],
    );
    if (!inserted) return false;
    await tx.none(
      `INSERT INTO archived_event_ids (tenant_id, event_id, thread_id, seq)
       SELECT tenant_id, event_id, thread_id, seq FROM agent_events WHERE thread_id = $1 AND seq BETWEEN $2 AND $3
       ON CONFLICT DO NOTHING`,
      [a.threadId, a.fromSeq, a.toSeq],
    );
    const deleted = await tx.result(
      "DELETE FROM agent_events WHERE thread_id = $1 AND seq BETWEEN $2 AND $3",
      [a.threadId, a.fromSeq, a.toSeq],
      (r) => r.rowCount,
    );
    // The archive must hold exactly what left Postgres; anything else rolls back.
    if (deleted !== a.eventCount) throw new Error(`archive ${a.objectKey}: expected to delete ${a.eventCount} rows, deleted ${deleted}`);
    return true;
  });
}

export async function withArchiveLease<T>(db: Db, threadId: string, leaseMs: number, work: () => Promise<T>): Promise<T | undefined> {
  const claimed = await db.oneOrNone(
    `UPDATE threads SET archive_lease_until = now() + $2 * interval '1 millisecond'
      WHERE thread_id = $1 AND status <> 'deleted' AND (archive_lease_until IS NULL OR archive_lease_until < now())
      RETURNING thread_id`,
    [threadId, leaseMs],
  );
  if (!claimed) return undefined;
  try {
    return await work();
  } finally {
    await db.none("UPDATE threads SET archive_lease_until = NULL WHERE thread_id = $1", [threadId]);
  }
}

export async function archiveCandidates(db: Db, before: number, limit: number): Promise<string[]> {
  const rows = await db.any<{ thread_id: string }>(
    `SELECT DISTINCT thread_id FROM (
        SELECT thread_id FROM agent_events WHERE created_at < $1 LIMIT $2 * 100
     ) old LIMIT $2`,
    [new Date(before), limit],
  );
  return rows.map((r) => r.thread_id);
}

export async function lastSeqBefore(db: Db, threadId: string, before: number): Promise<number> {
  const row = await db.one<{ seq: number | null }>(
    "SELECT max(seq) AS seq FROM agent_events WHERE thread_id = $1 AND created_at < $2",
    [threadId, new Date(before)],
  );
  return row.seq ?? 0;
}

export async function idleThreads(db: Db, before: number, limit: number): Promise<string[]> {
  const rows = await db.any<{ thread_id: string }>(
    "SELECT thread_id FROM threads WHERE status <> 'deleted' AND updated_at < $1 ORDER BY updated_at LIMIT $2",
    [new Date(before), limit],
  );
  return rows.map((r) => r.thread_id);
}

/** Rows go, the thread row stays as a tombstone so the id is never reused and answers NOT_FOUND. */
export async function eraseThread(db: Db, threadId: string, tenantId: string): Promise<string[]> {
  return db.tx("erase", async (tx) => {
    // The tombstone first: it takes the row lock the persister's projection waits on.
    await tx.none(
      `INSERT INTO threads (thread_id, tenant_id, status, last_seq, metadata, created_at, updated_at)
       VALUES ($1, $2, 'deleted', 0, '{}', now(), now())
       ON CONFLICT (thread_id) DO UPDATE SET status = 'deleted', metadata = '{}', updated_at = now()`,
      [threadId, tenantId],
    );
    const keys = await tx.any<{ object_key: string }>("DELETE FROM event_archives WHERE thread_id = $1 RETURNING object_key", [threadId]);
    await tx.none("DELETE FROM agent_events WHERE thread_id = $1", [threadId]);
    await tx.none("DELETE FROM archived_event_ids WHERE thread_id = $1", [threadId]);
    await tx.none("DELETE FROM turns WHERE thread_id = $1", [threadId]);
    return keys.map((k) => k.object_key);
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function archiveFromRow(r: any): ArchiveRecord {
  return {
    archiveId: r.archive_id,
    threadId: r.thread_id,
    tenantId: r.tenant_id,
    fromSeq: r.from_seq,
    toSeq: r.to_seq,
    objectKey: r.object_key,
    eventCount: r.event_count,
    bytes: r.bytes,
    sha256: r.sha256,
    createdAt: r.created_at.getTime(),
  };
}
