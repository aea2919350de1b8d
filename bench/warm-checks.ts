// What the warm tier holds, asked in SQL: how far the persister got, and
// whether every seeded event is there exactly once.
import type { PostgresWarmStore } from "../server/tiers/warm/postgres/postgres-warm-store.js";
import { nowMs, sleep } from "./clock.js";

type Db = PostgresWarmStore["db"];

/** Events persisted over the given threads: the sum of threads.last_seq (cheaper than counting rows). */
export async function persistedEvents(db: Db, threadIds: string[]): Promise<number> {
  const row = await db.one<{ n: number | null }>("SELECT sum(last_seq)::bigint AS n FROM threads WHERE thread_id IN ($1:csv)", [threadIds]);
  return Number(row.n ?? 0);
}

/** Polls `progress` until it reaches `target`; answers when (monotonic ms) or undefined on timeout. */
export async function waitFor(progress: () => Promise<number>, target: number, timeoutMs: number, everyMs: number): Promise<number | undefined> {
  const deadline = nowMs() + timeoutMs;
  for (;;) {
    if ((await progress()) >= target) return nowMs();
    if (nowMs() > deadline) return undefined;
    await sleep(everyMs);
  }
}

/** Each thread holds seqs 1..last in agent_events (archived ones excepted), once each. */
export async function verifyPersisted(db: Db, lastSeq: Map<string, number>, archivedThrough = 0): Promise<string[]> {
  const rows = await db.any<{ thread_id: string; n: number; lo: number; hi: number; last_seq: number }>(
    `SELECT e.thread_id, count(*)::bigint AS n, min(e.seq) AS lo, max(e.seq) AS hi, max(t.last_seq) AS last_seq
       FROM agent_events e JOIN threads t USING (thread_id)
      WHERE e.thread_id IN ($1:csv) GROUP BY e.thread_id`,
    [[...lastSeq.keys()]],
  );
  const found = new Map(rows.map((r) => [r.thread_id, r]));
  const problems: string[] = [];
  for (const [threadId, last] of lastSeq) {
    const r = found.get(threadId);
    const want = { n: last - archivedThrough, lo: archivedThrough + 1, hi: last };
    if (!r) problems.push(`thread ${threadId}: no events in Postgres, expected seqs ${want.lo}-${want.hi}`);
    else if (Number(r.n) !== want.n || r.lo !== want.lo || r.hi !== want.hi || r.last_seq !== last) {
      problems.push(
        `thread ${threadId}: Postgres holds ${r.n} events, seqs ${r.lo}-${r.hi}, threads.last_seq ${r.last_seq}; ` +
          `expected ${want.n}, seqs ${want.lo}-${want.hi}, last_seq ${last}`,
      );
    }
  }
  return problems;
}
