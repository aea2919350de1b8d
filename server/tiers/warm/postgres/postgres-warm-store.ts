// The warm tier on Postgres through pg-promise. Embedded PGlite is reached the
// same way (over its wire-protocol socket), so this is the only SQL there is.
import pgPromise, { type IDatabase, type ITask } from "pg-promise";
import type { StoredEvent, ThreadRecord, TurnRecord, TurnStatus } from "../../../domain/records.js";
import type { ArchiveRecord, EventFilter, Page, WarmStore } from "../warm-store.js";
import * as archives from "./postgres-archives.js";
import { decodeToken, encodeToken } from "../../../domain/page-token.js";
import { PersistGap, type ThreadGap } from "../../../domain/errors.js";
import { firstGap } from "../../../domain/seq-gaps.js";

export interface PostgresOptions {
  connection: string | { host: string; port: number; database: string; user: string };
  schema: string;
  /** Pool size; PGlite runs one query at a time, so it gets exactly one. */
  maxConnections: number;
}

type Db = IDatabase<unknown>;
const { ParameterizedQuery, PreparedStatement } = pgPromise;
type Tx = ITask<unknown>;

interface EventRow {
  thread_id: string;
  seq: number;
  event_id: string;
  turn_id: string;
  tenant_id: string;
  type: string;
  payload: StoredEvent["payload"];
  metadata: Record<string, string>;
  schema_version: number;
  level: StoredEvent["level"];
  /** created_at in epoch milliseconds (eventColumns): a number parses far faster than a timestamptz's text. */
  created_ms: number;
}

/**
 * An event row's columns, created_at as epoch ms (whole: events are stamped to
 * the millisecond). Named apart from created_at, which ORDER BY would
 * otherwise take for this expression instead of the indexed column.
 */
const createdMs = "floor(extract(epoch FROM created_at) * 1000)::bigint";
const eventColumns = `thread_id, seq, event_id, turn_id, tenant_id, type, payload, metadata, schema_version, level, ${createdMs} AS created_ms`;

/**
 * One page of a thread by seq range (read()), as one JSON array of rows (the
 * columns in the order ThreadPageRow names them): a single JSON.parse in Node
 * instead of the driver's parsing of every column of every row, which was a
 * third of a replay's server time. A page's text must stay under V8's string
 * limit (~512 MiB): at the largest events the API takes (~330 KB with
 * metadata), pages of up to 1,000 events do.
 */
const locateEventIdsSql = `SELECT event_id, thread_id, seq FROM agent_events WHERE tenant_id = $1 AND event_id = ANY($2::text[])
  UNION ALL SELECT event_id, thread_id, seq FROM archived_event_ids WHERE tenant_id = $1 AND event_id = ANY($2::text[])`;
const threadPageSql = `SELECT coalesce(json_agg(json_build_array(seq, event_id, turn_id, tenant_id, type, payload, metadata, schema_version, level,
    ${createdMs}) ORDER BY seq), '[]')::text AS page
  FROM agent_events WHERE thread_id = $1 AND seq > $2 AND seq <= $2 + $3`;
const maxThreadPage = 1_000;
type ThreadPageRow = [
  seq: number, eventId: string, turnId: string, tenantId: string, type: string, payload: StoredEvent["payload"],
  metadata: Record<string, string>, schemaVersion: number, level: StoredEvent["level"], createdAt: number,
];

/** What each turn.* event does to its turn's row. */
const turnTransitions: Record<string, { status: TurnStatus; ends?: boolean; starts?: boolean }> = {
  "turn.started": { status: "running", starts: true },
  "turn.retrying": { status: "queued" },
  "turn.completed": { status: "completed", ends: true },
  "turn.failed": { status: "failed", ends: true },
  "turn.cancelled": { status: "cancelled", ends: true },
  "turn.dead_lettered": { status: "dead_lettered", ends: true },
};

export class PostgresWarmStore implements WarmStore {
  private constructor(readonly db: Db) {}

  static open(opts: PostgresOptions): PostgresWarmStore {
    // One pg-promise instance per store (its schema option sets search_path); tests open many in one process.
    const pgp = pgPromise({ schema: opts.schema, noWarnings: true });
    // bigint columns (seqs, counts) come back as numbers: a log never nears 2^53.
    pgp.pg.types.setTypeParser(20, (v: string) => Number(v));
    const connection =
      typeof opts.connection === "string"
        ? { connectionString: opts.connection, max: opts.maxConnections }
        : { ...opts.connection, max: opts.maxConnections };
    return new PostgresWarmStore(pgp(connection));
  }

  async persistBatch(batch: StoredEvent[], namedThrough?: ReadonlyMap<string, number>): Promise<void> {
    if (batch.length === 0 && !namedThrough?.size) return;
    await this.db.tx("persist", async (tx) => {
      await refuseHoles(tx, batch, namedThrough);
      if (batch.length === 0) return;
      // Thread rows first: the upsert takes the row locks an erasure also takes,
      // and a thread erased meanwhile is not resurrected (its events are dropped).
      const live = await projectThreads(tx, batch);
      const events = live.size === batch.length ? batch : batch.filter((e) => live.has(e.threadId));
      if (events.length === 0) return;
      await insertEvents(tx, events);
      await projectTurns(tx, events);
    });
  }

  async read(threadId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    // Seqs are gapless, so the page is a seq range: the plan stays an index range scan
    // whatever the table statistics say (an open-ended one degrades to a sort of the whole thread).
    // A tail's history is mostly this query: prepared once per connection, one JSON text per page,
    // and no thread_id column (it is the argument).
    if (limit > maxThreadPage) throw new Error(`a thread page holds at most ${maxThreadPage} events, asked for ${limit}`);
    const [[page]] = await this.db.any<[string]>(
      new PreparedStatement({ name: "eventide-read-thread-page", text: threadPageSql, values: [threadId, afterSeq, limit], rowMode: "array" }),
    );
    const rows = JSON.parse(page) as ThreadPageRow[];
    const events = new Array<StoredEvent>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [seq, eventId, turnId, tenantId, type, payload, metadata, schemaVersion, level, createdAt] = rows[i];
      events[i] = { eventId, threadId, turnId, seq, type, payload, metadata, schemaVersion, createdAt, tenantId, level };
    }
    return events;
  }

  async findEvent(tenantId: string, eventId: string): Promise<StoredEvent | undefined> {
    // An id taken twice at once on two partitions names two events (see migration 002): the first counts.
    const row = await this.db.oneOrNone<EventRow>(`SELECT ${eventColumns} FROM agent_events WHERE tenant_id = $1 AND event_id = $2 ORDER BY created_at, thread_id, seq LIMIT 1`, [
      tenantId,
      eventId,
    ]);
    return row ? fromRow(row) : undefined;
  }

  async locateEventIds(tenantId: string, eventIds: string[]): Promise<Map<string, { threadId: string; seq: number }>> {
    const found = new Map<string, { threadId: string; seq: number }>();
    if (eventIds.length === 0) return found;
    // Every append with client event ids asks this (an agent's every token): prepared once per connection.
    const rows = await this.db.any<{ event_id: string; thread_id: string; seq: number }>(
      new PreparedStatement({ name: "eventide-locate-event-ids", text: locateEventIdsSql, values: [tenantId, eventIds] }),
    );
    for (const r of rows) if (!found.has(r.event_id)) found.set(r.event_id, { threadId: r.thread_id, seq: r.seq });
    return found;
  }

  async listEvents(filter: EventFilter, pageSize: number, pageToken: string): Promise<Page<StoredEvent>> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown) => `$${params.push(value)}`;
    if (filter.threadId) where.push(`thread_id = ${param(filter.threadId)}`);
    if (filter.turnId) where.push(`turn_id = ${param(filter.turnId)}`);
    if (filter.tenantId) where.push(`tenant_id = ${param(filter.tenantId)}`);
    if (filter.types.length) where.push(`(${filter.types.map((t) => `type LIKE ${param(`${escapeLike(t)}%`)}`).join(" OR ")})`);
    if (filter.createdAfter !== undefined) where.push(`created_at >= ${param(new Date(filter.createdAfter))}`);
    if (filter.createdBefore !== undefined) where.push(`created_at < ${param(new Date(filter.createdBefore))}`);
    if (filter.afterSeq) where.push(`seq > ${param(filter.afterSeq)}`);
    // Within a thread the order is seq; across threads it is time, then thread, then seq.
    const byThread = Boolean(filter.threadId);
    const after = decodeToken(pageToken, byThread ? ["seq"] : ["time", "id", "seq"]);
    if (after) {
      if (byThread) where.push(`seq > ${param(after[0])}`);
      else where.push(`(created_at, thread_id, seq) > (${param(new Date(after[0] as number))}, ${param(after[1])}, ${param(after[2])})`);
    }
    const order = byThread ? "seq" : "created_at, thread_id, seq";
    const rows = await this.db.any<EventRow>(
      `SELECT ${eventColumns} FROM agent_events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY ${order} LIMIT ${param(pageSize + 1)}`,
      params,
    );
    const items = rows.slice(0, pageSize).map(fromRow);
    const last = items.at(-1);
    const more = rows.length > pageSize && last;
    return {
      items,
      nextPageToken: more ? encodeToken(byThread ? [last.seq] : [last.createdAt, last.threadId, last.seq]) : "",
    };
  }

  async getThread(threadId: string, tenantId?: string): Promise<ThreadRecord | undefined> {
    // By (id, tenant): another tenant's thread costs Postgres what an unknown id does.
    const row = await this.db.oneOrNone("SELECT * FROM threads WHERE thread_id = $1 AND ($2::text IS NULL OR tenant_id = $2)", [
      threadId,
      tenantId ?? null,
    ]);
    return row ? threadFromRow(row) : undefined;
  }

  async listThreads(tenantId: string | undefined, pageSize: number, pageToken: string): Promise<Page<ThreadRecord>> {
    const after = decodeToken(pageToken, ["time", "id"]);
    const rows = await this.db.any(
      `SELECT * FROM threads
        WHERE ($1::text IS NULL OR tenant_id = $1)
          AND ($2::timestamptz IS NULL OR (created_at, thread_id) < ($2, $3))
        ORDER BY created_at DESC, thread_id DESC LIMIT $4`,
      [tenantId ?? null, after ? new Date(after[0] as number) : null, after?.[1] ?? "", pageSize + 1],
    );
    const items = rows.slice(0, pageSize).map(threadFromRow);
    const last = items.at(-1);
    return { items, nextPageToken: rows.length > pageSize && last ? encodeToken([last.createdAt, last.threadId]) : "" };
  }

  async getTurn(turnId: string, tenantId?: string): Promise<TurnRecord | undefined> {
    const row = await this.db.oneOrNone("SELECT * FROM turns WHERE turn_id = $1 AND ($2::text IS NULL OR tenant_id = $2)", [
      turnId,
      tenantId ?? null,
    ]);
    return row ? turnFromRow(row) : undefined;
  }

  async threadsWithOpenTurns(afterThreadId: string, limit: number): Promise<string[]> {
    const rows = await this.db.any<{ thread_id: string }>(
      `SELECT DISTINCT thread_id FROM turns WHERE status IN ('queued', 'running') AND thread_id > $1 ORDER BY thread_id LIMIT $2`,
      [afterThreadId, limit],
    );
    return rows.map((r) => r.thread_id);
  }

  async listTurns(threadId: string, pageSize: number, pageToken: string): Promise<Page<TurnRecord>> {
    const after = decodeToken(pageToken, ["seq"]);
    const rows = await this.db.any(
      "SELECT * FROM turns WHERE thread_id = $1 AND submitted_seq > $2 ORDER BY submitted_seq LIMIT $3",
      [threadId, after ? after[0] : 0, pageSize + 1],
    );
    const items = rows.slice(0, pageSize).map(turnFromRow);
    const last = items.at(-1);
    return { items, nextPageToken: rows.length > pageSize && last ? encodeToken([last.submittedSeq]) : "" };
  }

  async oldestEvents(threadId: string, upToSeq: number, max: number): Promise<StoredEvent[]> {
    const { first } = await this.db.one<{ first: number | null }>("SELECT min(seq) AS first FROM agent_events WHERE thread_id = $1", [threadId]);
    if (first === null || first > upToSeq) return [];
    const rows = await this.db.any<EventRow>(
      `SELECT ${eventColumns} FROM agent_events WHERE thread_id = $1 AND seq >= $2 AND seq <= LEAST($3, $2 + $4 - 1) ORDER BY seq`,
      [threadId, first, upToSeq, max],
    );
    return rows.map(fromRow);
  }

  findArchive(threadId: string, seq: number) {
    return archives.findArchive(this.db, threadId, seq);
  }

  listArchives(threadId: string) {
    return archives.listArchives(this.db, threadId);
  }

  getArchive(archiveId: string) {
    return archives.getArchive(this.db, archiveId);
  }

  commitArchive(archive: ArchiveRecord) {
    return archives.commitArchive(this.db, archive);
  }

  withArchiveLease<T>(threadId: string, leaseMs: number, work: () => Promise<T>) {
    return archives.withArchiveLease(this.db, threadId, leaseMs, work);
  }

  archiveCandidates(before: number, limit: number) {
    return archives.archiveCandidates(this.db, before, limit);
  }

  lastSeqBefore(threadId: string, before: number) {
    return archives.lastSeqBefore(this.db, threadId, before);
  }

  idleThreads(before: number, limit: number) {
    return archives.idleThreads(this.db, before, limit);
  }

  eraseThread(threadId: string, tenantId: string) {
    return archives.eraseThread(this.db, threadId, tenantId);
  }

  async ping(): Promise<void> {
    await this.db.one("SELECT 1 AS ok");
  }

  async close(): Promise<void> {
    await this.db.$pool.end();
  }
}

// The write path sends every batch as a few statements whose values travel as
// real bind parameters (ParameterizedQuery: Parse/Bind, no client-side
// escaping, no 2 MB SQL literal for Postgres to lex): one array per column,
// zipped back into rows by unnest(). Event payloads go in as JSON text and are
// parsed once, by the ::jsonb cast.

/**
 * Locks the batch's thread rows (in thread_id order, as the upserts take them)
 * and throws PersistGap unless every thread's log stays contiguous: last_seq
 * then always means "every seq up to here is persisted (or archived)", which
 * is what the hot tier's trimming relies on. Deleted threads drop their events.
 */
async function refuseHoles(tx: Tx, batch: StoredEvent[], namedThrough?: ReadonlyMap<string, number>): Promise<void> {
  const seqsOf = new Map<string, number[]>();
  for (const e of batch) {
    let seqs = seqsOf.get(e.threadId);
    if (!seqs) seqsOf.set(e.threadId, (seqs = []));
    seqs.push(e.seq);
  }
  for (const threadId of namedThrough?.keys() ?? []) if (!seqsOf.has(threadId)) seqsOf.set(threadId, []);
  const ids = [...seqsOf.keys()].sort();
  const rows = await tx.any<{ thread_id: string; last_seq: number; status: string }>(
    new ParameterizedQuery({
      text: "SELECT thread_id, last_seq, status FROM threads WHERE thread_id = ANY($1::text[]) ORDER BY thread_id FOR UPDATE",
      values: [ids],
    }),
  );
  const held = new Map(rows.map((r) => [r.thread_id, r]));
  const gaps: ThreadGap[] = [];
  for (const threadId of ids) {
    const row = held.get(threadId);
    if (row?.status === "deleted") continue;
    const gap = firstGap(seqsOf.get(threadId)!.sort((a, b) => a - b), row?.last_seq ?? 0, namedThrough?.get(threadId));
    if (gap) gaps.push({ threadId, ...gap });
  }
  if (gaps.length > 0) throw new PersistGap(gaps);
}

/**
 * last_seq only grows; the thread row appears with its first persisted event.
 * Returns the threads that are not deleted. One upsert for the threads a
 * batch creates (thread.created sets metadata and created_at) and one for the
 * rest; rows in thread_id order, so row locks are always taken in one order.
 */
async function projectThreads(tx: Tx, events: StoredEvent[]): Promise<Set<string>> {
  const threads = new Map<string, { tenant: string; last: number; first: number; updated: number; metadata?: object }>();
  for (const e of events) {
    let t = threads.get(e.threadId);
    if (!t) threads.set(e.threadId, (t = { tenant: e.tenantId, last: 0, first: e.createdAt, updated: 0 }));
    if (e.seq > t.last) t.last = e.seq;
    if (e.createdAt < t.first) t.first = e.createdAt;
    if (e.createdAt > t.updated) t.updated = e.createdAt;
    if (e.type === "thread.created") t.metadata = (e.payload.metadata as object | undefined) ?? {};
  }
  const ids = [...threads.keys()].sort();
  const live = new Set<string>();
  for (const created of [true, false]) {
    const rows = ids.filter((id) => (threads.get(id)!.metadata !== undefined) === created);
    if (rows.length === 0) continue;
    const ts = rows.map((id) => threads.get(id)!);
    const returned = await tx.any<{ thread_id: string }>(
      new ParameterizedQuery({
        text: created ? upsertCreatedThreadsSql : upsertThreadsSql,
        values: [rows, ts.map((t) => t.tenant), ts.map((t) => t.last), ts.map((t) => JSON.stringify(t.metadata ?? {})),
          ts.map((t) => t.first), ts.map((t) => t.updated)],
      }),
    );
    for (const r of returned) live.add(r.thread_id);
  }
  return live;
}

const threadRowsSql = `
  INSERT INTO threads (thread_id, tenant_id, last_seq, metadata, created_at, updated_at)
  SELECT t, tn, l, m::jsonb, to_timestamp(f / 1000.0), to_timestamp(u / 1000.0)
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[]) AS x(t, tn, l, m, f, u)
   ORDER BY t
  ON CONFLICT (thread_id) DO UPDATE SET
    last_seq = GREATEST(threads.last_seq, EXCLUDED.last_seq),
    updated_at = GREATEST(threads.updated_at, EXCLUDED.updated_at)`;
const upsertThreadsSql = `${threadRowsSql}
  WHERE threads.status <> 'deleted'
  RETURNING thread_id`;
const upsertCreatedThreadsSql = `${threadRowsSql},
    metadata = EXCLUDED.metadata,
    created_at = EXCLUDED.created_at
  WHERE threads.status <> 'deleted'
  RETURNING thread_id`;

/** Rows per INSERT statement (a transaction may hold several). */
const insertChunk = 5_000;

// Payloads and metadata travel as one JSON array each (the JSON texts joined:
// no per-element escaping in Node, one jsonb parse in Postgres); ROWS FROM
// zips them with the other columns by position.
const insertEventsSql = `
  INSERT INTO agent_events (thread_id, seq, event_id, turn_id, tenant_id, type, payload, metadata, schema_version, level, created_at)
  SELECT t, s, i, tu, tn, ty, p, m, sv, l, to_timestamp(c / 1000.0)
    FROM ROWS FROM (unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]),
                    jsonb_array_elements($7::jsonb), jsonb_array_elements($8::jsonb),
                    unnest($9::integer[], $10::text[], $11::bigint[])) AS x(t, s, i, tu, tn, ty, p, m, sv, l, c)`;
const insertMissingEventsSql = `${insertEventsSql} ON CONFLICT DO NOTHING`;

async function insertEvents(tx: Tx, events: StoredEvent[]): Promise<void> {
  for (let from = 0; from < events.length; from += insertChunk) {
    const n = Math.min(insertChunk, events.length - from);
    const cols = Array.from({ length: 11 }, () => new Array<unknown>(n));
    const payloads = new Array<string>(n);
    const metadata = new Array<string>(n);
    for (let k = 0; k < n; k++) {
      const e = events[from + k];
      cols[0][k] = e.threadId;
      cols[1][k] = e.seq;
      cols[2][k] = e.eventId;
      cols[3][k] = e.turnId;
      cols[4][k] = e.tenantId;
      cols[5][k] = e.type;
      payloads[k] = e.payloadJson ?? JSON.stringify(e.payload);
      metadata[k] = JSON.stringify(e.metadata);
      cols[8][k] = e.schemaVersion;
      cols[9][k] = e.level;
      cols[10][k] = e.createdAt;
    }
    cols[6] = `[${payloads.join(",")}]` as never;
    cols[7] = `[${metadata.join(",")}]` as never;
    await insertOnce(tx, cols, n);
  }
}

/**
 * A batch is new but for redeliveries (a crashed persister's batch, redone):
 * the plain INSERT is tried first, in a savepoint, and only when it meets a
 * row already there is it redone with ON CONFLICT DO NOTHING, which skips the
 * rows already persisted. The plain INSERT costs Postgres about a third less
 * (ON CONFLICT probes the unique indexes before each row goes in); for a few
 * rows, the savepoint's two round trips cost more than that saves.
 */
async function insertOnce(tx: Tx, values: unknown[], rows: number): Promise<void> {
  if (rows < savepointFromRows) {
    await tx.none(new ParameterizedQuery({ text: insertMissingEventsSql, values }));
    return;
  }
  try {
    await tx.tx("insert", (sp) => sp.none(new ParameterizedQuery({ text: insertEventsSql, values })));
  } catch (err) {
    if ((err as { code?: string }).code !== uniqueViolation) throw err;
    await tx.none(new ParameterizedQuery({ text: insertMissingEventsSql, values }));
  }
}

const uniqueViolation = "23505";
const savepointFromRows = 100;

/**
 * turn.submitted creates the row; later turn.* events move it, never backwards
 * (status_seq). The moves are applied in rounds: round k holds each turn's k-th
 * move of the batch, in seq order, so one UPDATE per round does what one
 * UPDATE per event did (a turn's moves still apply one after the other).
 */
async function projectTurns(tx: Tx, events: StoredEvent[]): Promise<void> {
  const touched = new Set<string>();
  const submitted: StoredEvent[] = [];
  const rounds: StoredEvent[][] = [];
  const movesOf = new Map<string, number>();
  for (const e of events) {
    if (e.type === "turn.submitted") {
      touched.add(e.threadId);
      submitted.push(e);
      continue;
    }
    if (!turnTransitions[e.type] || !e.turnId) continue;
    touched.add(e.threadId);
    const k = movesOf.get(e.turnId) ?? 0;
    movesOf.set(e.turnId, k + 1);
    (rounds[k] ??= []).push(e);
  }
  if (touched.size === 0) return;
  if (submitted.length > 0) {
    await tx.none(
      new ParameterizedQuery({
        text: `INSERT INTO turns (turn_id, thread_id, tenant_id, status, input, metadata, idempotency_key,
                                  submitted_seq, status_seq, created_at, updated_at)
               SELECT tu, t, tn, 'queued', i::jsonb, m::jsonb, k, s, s, to_timestamp(c / 1000.0), to_timestamp(c / 1000.0)
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])
                   AS x(tu, t, tn, i, m, k, s, c)
               ON CONFLICT (turn_id) DO NOTHING`,
        values: [
          submitted.map((e) => e.turnId), submitted.map((e) => e.threadId), submitted.map((e) => e.tenantId),
          submitted.map((e) => JSON.stringify(e.payload.input ?? {})), submitted.map((e) => JSON.stringify(e.payload.metadata ?? {})),
          submitted.map((e) => String(e.payload.idempotency_key ?? "")), submitted.map((e) => e.seq), submitted.map((e) => e.createdAt),
        ],
      }),
    );
  }
  for (const round of rounds) {
    const moves = round.map((e) => ({ e, p: e.payload, move: turnTransitions[e.type] }));
    await tx.none(
      new ParameterizedQuery({
        text: `UPDATE turns SET status = x.st, status_seq = x.s, updated_at = to_timestamp(x.c / 1000.0),
                 attempt = COALESCE(x.att, turns.attempt), agent_id = COALESCE(x.ag, turns.agent_id),
                 output = COALESCE(x.o::jsonb, turns.output), error = COALESCE(x.er, turns.error),
                 started_at = CASE WHEN x.starts THEN to_timestamp(x.c / 1000.0) ELSE turns.started_at END,
                 ended_at = CASE WHEN x.ends THEN to_timestamp(x.c / 1000.0) ELSE turns.ended_at END
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::integer[], $6::text[], $7::text[], $8::text[],
                             $9::boolean[], $10::boolean[]) AS x(tu, st, s, c, att, ag, o, er, starts, ends)
                WHERE turns.turn_id = x.tu AND turns.status_seq < x.s`,
        values: [
          moves.map((m) => m.e.turnId), moves.map((m) => m.move.status), moves.map((m) => m.e.seq), moves.map((m) => m.e.createdAt),
          moves.map((m) => (typeof m.p.attempt === "number" ? m.p.attempt : null)),
          moves.map((m) => (typeof m.p.agent_id === "string" ? m.p.agent_id : null)),
          moves.map((m) => (m.p.output === undefined ? null : JSON.stringify(m.p.output))),
          moves.map((m) => (typeof m.p.error === "string" ? m.p.error : null)),
          moves.map((m) => Boolean(m.move.starts)), moves.map((m) => Boolean(m.move.ends)),
        ],
      }),
    );
  }
  await tx.none(
    new ParameterizedQuery({
      text: `UPDATE threads t SET status = CASE WHEN EXISTS (
                SELECT 1 FROM turns u WHERE u.thread_id = t.thread_id AND u.status IN ('queued', 'running')
              ) THEN 'busy' ELSE 'idle' END
             WHERE t.thread_id = ANY($1::text[])`,
      values: [[...touched].sort()],
    }),
  );
}

function fromRow(r: EventRow): StoredEvent {
  return {
    eventId: r.event_id,
    threadId: r.thread_id,
    turnId: r.turn_id,
    seq: r.seq,
    type: r.type,
    payload: r.payload,
    metadata: r.metadata,
    schemaVersion: r.schema_version,
    createdAt: r.created_ms,
    tenantId: r.tenant_id,
    level: r.level,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function threadFromRow(r: any): ThreadRecord {
  return {
    threadId: r.thread_id,
    tenantId: r.tenant_id,
    status: r.status,
    lastSeq: r.last_seq,
    metadata: r.metadata,
    createdAt: r.created_at.getTime(),
    updatedAt: r.updated_at.getTime(),
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function turnFromRow(r: any): TurnRecord {
  return {
    turnId: r.turn_id,
    threadId: r.thread_id,
    tenantId: r.tenant_id,
    status: r.status,
    input: r.input,
    output: r.output ?? undefined,
    error: r.error,
    attempt: r.attempt,
    agentId: r.agent_id,
    idempotencyKey: r.idempotency_key,
    metadata: r.metadata,
    submittedSeq: r.submitted_seq,
    createdAt: r.created_at.getTime(),
    startedAt: r.started_at?.getTime(),
    endedAt: r.ended_at?.getTime(),
    updatedAt: r.updated_at.getTime(),
  };
}

function escapeLike(prefix: string): string {
  return prefix.replace(/[\\%_]/g, (c) => `\\${c}`);
}
