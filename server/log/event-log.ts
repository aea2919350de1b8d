// The event log as the services see it: one facade over the tiers. Writes go
// to the hot tier (the only place seqs are assigned); reads stitch warm → hot
// so that what the persister moved and the hot window trimmed is still there.
import { EventIdConflict, NotFound, OutOfRange } from "../domain/errors.js";
import { decodeToken, encodeToken } from "../domain/page-token.js";
import type { StoredEvent, ThreadRecord, TurnRecord } from "../domain/records.js";
import type { AppendCommand, AppendResult, HotLog } from "../tiers/hot/hot-log.js";
import type { EventFilter, Page, WarmStore } from "../tiers/warm/warm-store.js";

export class EventLog {
  constructor(readonly hot: HotLog, readonly warm: WarmStore) {}

  get live() {
    return this.hot.live;
  }

  async append(cmd: AppendCommand): Promise<AppendResult> {
    const retried = await this.retriedFromWarm(cmd);
    if (retried) return retried;
    try {
      return await this.hot.append(cmd);
    } catch (err) {
      // The hot tier may have lost the thread (Redis data loss, embedded restart):
      // re-seed it from the system of record and try once more.
      if (!(err instanceof NotFound) || cmd.create || !(await this.restore(cmd.threadId))) throw err;
      return this.hot.append(cmd);
    }
  }

  /**
   * Client event ids older than the hot window are only in Postgres: a batch
   * whose ids are all there is a retry; some of them there is a conflict.
   */
  private async retriedFromWarm(cmd: AppendCommand): Promise<AppendResult | undefined> {
    const ids = cmd.events.filter((e) => e.clientSuppliedId).map((e) => e.eventId);
    if (ids.length === 0) return undefined;
    const found = await this.warm.locateEventIds(ids);
    if (found.size === 0) return undefined;
    const [firstId, where] = [...found][0];
    if (where.threadId !== cmd.threadId) throw new EventIdConflict(firstId, `thread/seq ${where.threadId} ${where.seq}`);
    if (found.size !== cmd.events.length) throw new EventIdConflict(firstId, "some ids of this batch are new");
    const events = await Promise.all(ids.map((id) => this.warm.findEvent(id)));
    const thread = await this.getThread(cmd.threadId);
    if (!thread || thread.tenantId !== cmd.tenantId) throw new NotFound("thread", cmd.threadId);
    return { kind: "duplicate-events", thread, events: events.filter((e): e is StoredEvent => e !== undefined) };
  }

  private async restore(threadId: string): Promise<boolean> {
    const thread = await this.warm.getThread(threadId);
    if (!thread || thread.status === "deleted") return false;
    const turns: TurnRecord[] = [];
    let token = "";
    do {
      const page = await this.warm.listTurns(threadId, 1000, token);
      turns.push(...page.items);
      token = page.nextPageToken;
    } while (token);
    await this.hot.restoreThread(thread, turns);
    return true;
  }

  /** The hot record is current (its last_seq includes what is not persisted yet); warm is the fallback. */
  async getThread(threadId: string): Promise<ThreadRecord | undefined> {
    return (await this.hot.getThread(threadId)) ?? (await this.warm.getThread(threadId));
  }

  async getTurn(turnId: string): Promise<TurnRecord | undefined> {
    return (await this.hot.getTurn(turnId)) ?? (await this.warm.getTurn(turnId));
  }

  async findEvent(eventId: string): Promise<StoredEvent | undefined> {
    return (await this.hot.findEvent(eventId)) ?? (await this.warm.findEvent(eventId));
  }

  /**
   * Events with seq > afterSeq, contiguous, at most `limit`, from whichever
   * tier holds each part. The hot tier only trims what the warm tier has
   * committed, so a seq missing from hot is always found in warm.
   */
  async read(threadId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    let cursor = afterSeq;
    while (out.length < limit) {
      const page = await this.readFromOneTier(threadId, cursor, limit - out.length);
      if (page.length === 0) break;
      out.push(...page);
      cursor = page[page.length - 1].seq;
    }
    return out;
  }

  private async readFromOneTier(threadId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    // A one-entry probe first, so old history does not drag a whole hot page along.
    const [next] = await this.hot.read(threadId, afterSeq, 1);
    if (next?.seq === afterSeq + 1) {
      const hot = await this.hot.read(threadId, afterSeq, limit);
      // The persister may have trimmed it between the two reads; then warm has it.
      if (hot[0]?.seq === afterSeq + 1) return hot;
    }
    const warm = await this.warm.read(threadId, afterSeq, limit);
    if (warm.length === 0 && !next) return [];
    if (warm[0]?.seq === afterSeq + 1) return warm;
    throw new OutOfRange(`seq ${afterSeq + 1} of thread ${threadId} is in no tier (removed by retention, or not archived yet)`);
  }

  /**
   * Thread-scoped listings stitch tiers like a tail (with filters); other
   * queries run on Postgres, which trails the hot tier by the persister's lag.
   */
  async listEvents(filter: EventFilter, pageSize: number, pageToken: string): Promise<Page<StoredEvent>> {
    if (!filter.threadId) return this.warm.listEvents(filter, pageSize, pageToken);
    return this.scanThread(filter, pageSize, pageToken);
  }

  private async scanThread(filter: EventFilter, pageSize: number, pageToken: string): Promise<Page<StoredEvent>> {
    const matches = eventMatcher(filter);
    let cursor = Math.max(filter.afterSeq ?? 0, Number(decodeToken(pageToken)?.[0] ?? 0));
    const items: StoredEvent[] = [];
    // Bounded work per page: a sparse filter returns a short page with a token to go on.
    for (let scanned = 0; items.length < pageSize && scanned < 20_000; ) {
      const chunk = await this.read(filter.threadId!, cursor, 1_000);
      if (chunk.length === 0) return { items, nextPageToken: "" };
      for (const e of chunk) {
        cursor = e.seq;
        if (matches(e)) items.push(e);
        if (items.length === pageSize) break;
      }
      scanned += chunk.length;
    }
    const thread = await this.getThread(filter.threadId!);
    return { items, nextPageToken: thread && cursor < thread.lastSeq ? encodeToken([cursor]) : "" };
  }

  async listThreads(tenantId: string | undefined, pageSize: number, pageToken: string) {
    return this.warm.listThreads(tenantId, pageSize, pageToken);
  }

  /** From Postgres: a turn submitted within the persister's lag (milliseconds) shows up a moment later. */
  async listTurns(threadId: string, pageSize: number, pageToken: string): Promise<Page<TurnRecord>> {
    return this.warm.listTurns(threadId, pageSize, pageToken);
  }
}

export function eventMatcher(filter: { types: string[]; turnId?: string; createdAfter?: number; createdBefore?: number }) {
  const { types, turnId, createdAfter, createdBefore } = filter;
  return (e: StoredEvent) =>
    (!turnId || e.turnId === turnId) &&
    (types.length === 0 || types.some((t) => e.type.startsWith(t))) &&
    (createdAfter === undefined || e.createdAt >= createdAfter) &&
    (createdBefore === undefined || e.createdAt < createdBefore);
}
