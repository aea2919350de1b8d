// The event log as the services see it: one facade over the tiers. Writes go
// to the hot tier (the only place seqs are assigned); reads stitch warm → hot
// so that what the persister moved and the hot window trimmed is still there.
import { EventIdConflict, LogHole, NotFound, OutOfRange } from "../domain/errors.js";
import { breakIn } from "../domain/seq-gaps.js";
import type { DataLossAlarm } from "../observability/data-loss-alarm.js";
import { decodeToken, encodeToken } from "../domain/page-token.js";
import type { StoredEvent, ThreadRecord, TurnRecord } from "../domain/records.js";
import type { AppendCommand, AppendResult, HotLog } from "../tiers/hot/hot-log.js";
import type { CountedLiveSource } from "../live/subscription.js";
import type { Metrics } from "../observability/metrics.js";
import type { ArchiveRecord, EventFilter, Page, WarmStore } from "../tiers/warm/warm-store.js";
import type { ArchiveReader } from "./archive-reader.js";

/** Events a tier read takes at once (a warm page is one JSON text: see the warm store's read). */
const pageSize = 1_000;
/** Warm pages a tail's history reads ahead: Postgres answers them on as many connections while the tail streams. */
const warmPagesAhead = 3;
/** A scan's first hot read: enough for a tail near the end of its log, little to drop when hot does not follow on. */
const hotProbe = 32;

/** Threads whose owner a process remembers (a Map of ids: a few MB). */
const ownersRemembered = 50_000;

export class EventLog {
  /** The hot tier's live feed; with metrics, it also counts what slow tailers drop. */
  readonly live: CountedLiveSource;
  /** Thread id → owning tenant. A thread's owner never changes, so this is never stale; deletion is the hot tier's to refuse. */
  private readonly owners = new Map<string, string>();

  constructor(
    readonly hot: HotLog,
    readonly warm: WarmStore,
    readonly archives?: ArchiveReader,
    private readonly metrics?: Metrics,
    /** Told of every hole a read finds (the read itself answers DATA_LOSS). */
    private readonly alarm?: DataLossAlarm,
  ) {
    this.live = metrics ? { subscribe: (threadId, onUpdate) => hot.live.subscribe(threadId, onUpdate), dropped: (reason) => metrics.fanoutDropped(reason) } : hot.live;
  }

  async append(cmd: AppendCommand): Promise<AppendResult> {
    let checked = cmd;
    if (this.hot.checkEventIds && cmd.events.some((e) => e.clientSuppliedId)) {
      // Two lookups that only read, one in Postgres and one in Redis: together, not one after the other.
      // What they find counts in the order they ran in before: a retry or conflict in warm first.
      const [warm, hot] = await Promise.allSettled([this.retriedFromWarm(cmd), this.hot.checkEventIds(cmd)]);
      if (warm.status === "rejected") throw warm.reason;
      if (warm.value) return warm.value;
      if (hot.status === "rejected") throw hot.reason;
      checked = { ...cmd, eventIdsChecked: true };
    } else {
      const retried = await this.retriedFromWarm(cmd);
      if (retried) return retried;
    }
    const res = await this.appendToHot(checked);
    if (res.kind === "appended") this.metrics?.eventsAppended.inc(res.events.length);
    return res;
  }

  private async appendToHot(cmd: AppendCommand): Promise<AppendResult> {
    try {
      return await this.hot.append(cmd);
    } catch (err) {
      // The hot tier may have lost the thread (Redis data loss, embedded restart):
      // re-seed it from the system of record and try once more.
      // Only the writer's own thread: another tenant's is refused after the same lookups as an unknown one.
      if (!(err instanceof NotFound) || cmd.create || !(await this.restoreThread(cmd.threadId, cmd.tenantId))) throw err;
      return this.hot.append(cmd);
    }
  }

  /**
   * Client event ids older than the hot window are only in Postgres: a batch
   * whose ids are all there is a retry; some of them there is a conflict.
   * Ids are the writer's tenant's: another tenant's are not looked at.
   */
  private async retriedFromWarm(cmd: AppendCommand): Promise<AppendResult | undefined> {
    const ids = cmd.events.filter((e) => e.clientSuppliedId).map((e) => e.eventId);
    if (ids.length === 0) return undefined;
    const found = await this.warm.locateEventIds(cmd.tenantId, ids);
    if (found.size === 0) return undefined;
    const [firstId, where] = [...found][0];
    if (where.threadId !== cmd.threadId) throw new EventIdConflict(firstId, `thread/seq ${where.threadId} ${where.seq}`);
    if (found.size !== cmd.events.length) throw new EventIdConflict(firstId, "some ids of this batch are new");
    const events = await Promise.all(ids.map((id) => this.findEvent(cmd.tenantId, id)));
    const thread = await this.getThread(cmd.threadId, cmd.tenantId);
    if (!thread) throw new NotFound("thread", cmd.threadId);
    return { kind: "duplicate-events", thread, events: events.filter((e): e is StoredEvent => e !== undefined) };
  }

  /** Re-seeds a thread the hot tier lost from the warm record (its dispatch state too); false when warm has none (of the tenant, if given). */
  async restoreThread(threadId: string, tenantId?: string): Promise<boolean> {
    const thread = await this.warm.getThread(threadId, tenantId);
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

  /**
   * The tenant that owns a thread that is not deleted, remembered after the
   * first lookup: every-tenant writers (agents, admins) write as the owner,
   * and this saves them a read of the thread on each append. A thread deleted
   * since is still refused: the append script checks the thread itself.
   */
  async ownerOf(threadId: string): Promise<string | undefined> {
    const known = this.owners.get(threadId);
    if (known !== undefined) return known;
    const thread = await this.getThread(threadId);
    if (!thread || thread.status === "deleted") return undefined;
    if (this.owners.size >= ownersRemembered) this.owners.delete(this.owners.keys().next().value!);
    this.owners.set(threadId, thread.tenantId);
    return thread.tenantId;
  }

  /**
   * The hot record is current (its last_seq includes what is not persisted yet); warm is the fallback.
   * With a tenant, only that tenant's thread: a hot record of another tenant counts as none, and
   * warm is asked by (thread, tenant), so another tenant's id takes the lookups an unknown one does.
   */
  async getThread(threadId: string, tenantId?: string): Promise<ThreadRecord | undefined> {
    const hot = await this.hot.getThread(threadId);
    if (hot && (tenantId === undefined || hot.tenantId === tenantId)) return hot;
    return this.warm.getThread(threadId, tenantId);
  }

  /** The turn; with a tenant, only that tenant's (as getThread). */
  async getTurn(turnId: string, tenantId?: string): Promise<TurnRecord | undefined> {
    return (await this.hot.getTurn(turnId, tenantId)) ?? (await this.warm.getTurn(turnId, tenantId));
  }

  /** The tenant's event with this id, from any tier: event ids are unique per tenant. */
  async findEvent(tenantId: string, eventId: string): Promise<StoredEvent | undefined> {
    const found = (await this.hot.findEvent(tenantId, eventId)) ?? (await this.warm.findEvent(tenantId, eventId));
    if (found) return found;
    // Archived: Postgres still knows where it went.
    const where = (await this.warm.locateEventIds(tenantId, [eventId])).get(eventId);
    if (!where) return undefined;
    const [event] = await this.read(where.threadId, where.seq - 1, 1);
    return event?.eventId === eventId ? event : undefined;
  }

  /** Events with seq > afterSeq, contiguous, at most `limit`, from whichever tiers hold them. */
  async read(threadId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const out: StoredEvent[] = [];
    if (limit <= 0) return out;
    for await (const event of this.scan(threadId, afterSeq)) {
      out.push(event);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * Every event with seq > afterSeq, contiguous, to the end of the log as it
   * stands, stitched cold → warm → hot. The hot tier only trims what the warm
   * tier committed, and the warm tier only deletes what an archive holds, so a
   * seq missing from one tier is always in an older one.
   */
  async *scan(threadId: string, afterSeq: number, signal?: AbortSignal): AsyncGenerator<StoredEvent> {
    for await (const page of this.scanPages(threadId, afterSeq, signal, { readAhead: false })) yield* page;
  }

  /**
   * scan() a page at a time (each non-empty, contiguous, following the last):
   * a replay pays the async hand-offs once a page instead of once an event.
   * With readAhead (tails, which read to the end), a full warm page keeps the
   * reads of the next warmPagesAhead pages going before it is handed over, so
   * Postgres works while the caller streams; without it (listings that stop
   * after a page of results), a warm read takes only what is asked for.
   * Every event's seq is checked: where a seq is missing from every tier
   * although later ones exist, what came before it is delivered and the scan
   * ends with LogHole (DATA_LOSS), never a shorter log.
   */
  async *scanPages(threadId: string, afterSeq: number, signal?: AbortSignal, opts = { readAhead: true }): AsyncGenerator<StoredEvent[]> {
    try {
      yield* this.stitch(threadId, afterSeq, signal, opts.readAhead);
    } catch (err) {
      if (err instanceof LogHole) this.alarm?.raise({ threadId, fromSeq: err.fromSeq, toSeq: err.toSeq, foundBy: "read", detail: err.detail });
      throw err;
    }
  }

  private async *stitch(threadId: string, afterSeq: number, signal: AbortSignal | undefined, readAhead: boolean): AsyncGenerator<StoredEvent[]> {
    let cursor = afterSeq;
    /** Events a hot read asks for: few until the hot tier has shown it holds history after the cursor. */
    let hotRead = hotProbe;
    /** Warm reads started ahead, in seq order: the pages right after the cursor. */
    let ahead: Promise<StoredEvent[]>[] = [];
    const readWarm = (after: number) => {
      const read = this.warm.read(threadId, after, pageSize);
      read.catch(() => {}); // awaited below, or dropped when the caller stops early
      return read;
    };
    /** After a full warm page: keep the next pages' reads going (seqs are gapless, so each page's range is known). */
    const keepReading = () => {
      if (!readAhead) return;
      while (ahead.length < warmPagesAhead) ahead.push(readWarm(cursor + ahead.length * pageSize));
    };
    /**
     * The part of a page that follows on from the cursor, which moves to its
     * end. Where a page skips a seq, the rest of it is left: the next round
     * looks for the missing seq in every tier and calls it a hole only when
     * none has it.
     */
    const take = (page: StoredEvent[]): StoredEvent[] => {
      const at = breakIn(page, cursor);
      if (page.length === 0 || at === 0) return [];
      const taken = at < 0 ? page : page.slice(0, at);
      cursor = taken[taken.length - 1].seq;
      return taken;
    };
    /** Takes a warm page that follows the cursor (a whole full one keeps the next reads going); empty if it does not follow. */
    const fromWarm = (warm: StoredEvent[]): StoredEvent[] => {
      const taken = take(warm);
      if (taken.length === pageSize) keepReading();
      else ahead = [];
      return taken;
    };
    try {
      while (!signal?.aborted) {
        if (ahead.length > 0) {
          const warm = fromWarm(await ahead.shift()!);
          if (warm.length > 0) {
            yield warm;
            continue;
          }
          // Warm ends here: what follows is in hot (or was moved meanwhile); the probes below decide.
          ahead = [];
        }
        // A short read first, so old history does not drag a whole hot page along: a tail near
        // the end of its log gets the rest in this one read; a long hot history goes on a page at a time.
        const hotPage = await this.hot.read(threadId, cursor, hotRead);
        const [next] = hotPage;
        if (next?.seq === cursor + 1) {
          const hot = take(hotPage);
          yield hot;
          // A whole short read is the end of the log as it stands.
          if (hot.length === hotPage.length && hotPage.length < hotRead) return;
          hotRead = pageSize;
          continue;
        }
        // Nothing in hot after the cursor: at the end of the log, unless the hot
        // stream holds nothing at all (a window of 0, or a thread re-seeded from warm).
        if (!next) {
          const thread = await this.hot.getThread(threadId);
          // Deleted (or erased by retention) under a running tail: say so, never go quiet.
          if (thread?.status === "deleted") throw new NotFound("thread", threadId);
          if (thread && thread.lastSeq <= cursor) return;
        }
        const page = await readWarm(cursor);
        const warm = fromWarm(page);
        if (warm.length > 0) {
          yield warm;
          continue;
        }
        let archive = await this.warm.findArchive(threadId, cursor + 1);
        if (archive) {
          let body: Promise<Buffer> | undefined;
          // Archives follow archives: the next one is looked up, and its object fetched, while this one
          // streams, and read straight after it (an archive is immutable, so no other tier need be asked).
          while (archive) {
            const following = this.nextArchive(archive);
            yield* this.fromArchive(archive, cursor, body);
            cursor = archive.toSeq;
            ({ archive, body } = (await following) ?? {});
            if (signal?.aborted) return;
          }
          continue;
        }
        // No tier holds cursor + 1: the end of the log, unless a tier holds a later seq
        // or the thread's record says the log goes on.
        const laterHeld = Math.min(next?.seq ?? Infinity, page[0]?.seq ?? Infinity);
        const missingTo = laterHeld < Infinity ? laterHeld - 1 : ((await this.lastSeq(threadId)) ?? cursor);
        if (missingTo <= cursor) return;
        // Appended or moved between the probes? Look once more before calling it a hole.
        if (await this.holds(threadId, cursor + 1)) continue;
        const detail = laterHeld < Infinity ? `no tier holds them; seq ${laterHeld} is stored` : `no tier holds them; the thread's last seq is ${missingTo}`;
        throw new LogHole(threadId, cursor + 1, missingTo, detail);
      }
    } finally {
      ahead = [];
    }
  }

  /**
   * The archive that follows `archive`, if any, with its object being fetched. Errors wait for
   * whoever awaits them: a scan that stops early leaves them unheard.
   */
  private nextArchive(archive: ArchiveRecord): Promise<{ archive: ArchiveRecord; body: Promise<Buffer> } | undefined> {
    const next = this.warm.findArchive(archive.threadId, archive.toSeq + 1).then((found) => {
      if (!found || !this.archives) return undefined;
      const body = this.archives.object(found);
      body.catch(() => {});
      return { archive: found, body };
    });
    next.catch(() => {});
    return next;
  }

  /** An archive's events after `afterSeq`, checked to run on without a gap to its last seq; `body` if its object is being fetched already. */
  private async *fromArchive(archive: ArchiveRecord, afterSeq: number, body?: Promise<Buffer>): AsyncGenerator<StoredEvent[]> {
    if (!this.archives) throw new OutOfRange(`seq ${afterSeq + 1} of thread ${archive.threadId} is archived and no cold tier is configured`);
    let cursor = afterSeq;
    const skipped = (from: number, to: number, why: string) =>
      new LogHole(archive.threadId, from, to, `archive ${archive.objectKey} (seqs ${archive.fromSeq}..${archive.toSeq}) ${why}`);
    for await (const page of this.archives.pages(archive, cursor, body)) {
      const at = breakIn(page, cursor);
      if (at >= 0) {
        if (at > 0) yield page.slice(0, at);
        const last = at > 0 ? page[at - 1].seq : cursor;
        throw skipped(last + 1, page[at].seq - 1, `skips from seq ${last} to ${page[at].seq}`);
      }
      cursor = page[page.length - 1].seq;
      yield page;
    }
    if (cursor < archive.toSeq) throw skipped(cursor + 1, archive.toSeq, `ends at seq ${cursor}`);
  }

  /** Whether any tier holds the seq now. */
  private async holds(threadId: string, seq: number): Promise<boolean> {
    const [hot] = await this.hot.read(threadId, seq - 1, 1);
    if (hot?.seq === seq) return true;
    const [warm] = await this.warm.read(threadId, seq - 1, 1);
    return warm?.seq === seq || (await this.warm.findArchive(threadId, seq)) !== undefined;
  }

  /** The log's last seq as the thread record has it (hot, else warm); undefined for no thread. */
  private async lastSeq(threadId: string): Promise<number | undefined> {
    const thread = await this.getThread(threadId);
    if (thread?.status === "deleted") throw new NotFound("thread", threadId);
    return thread?.lastSeq;
  }

  /**
   * Thread-scoped listings stitch tiers like a tail (with filters); other
   * queries run on Postgres, which trails the hot tier by the persister's lag.
   */
  async listEvents(filter: EventFilter, pageLimit: number, pageToken: string): Promise<Page<StoredEvent>> {
    if (!filter.threadId) return this.warm.listEvents(filter, pageLimit, pageToken);
    return this.scanThread(filter, pageLimit, pageToken);
  }

  private async scanThread(filter: EventFilter, pageLimit: number, pageToken: string): Promise<Page<StoredEvent>> {
    const matches = eventMatcher(filter);
    let cursor = Math.max(filter.afterSeq ?? 0, Number(decodeToken(pageToken, ["seq"])?.[0] ?? 0));
    const items: StoredEvent[] = [];
    // Bounded work per page: a sparse filter returns a short page with a token to go on.
    let scanned = 0;
    let exhausted = true;
    for await (const e of this.scan(filter.threadId!, cursor)) {
      cursor = e.seq;
      if (matches(e)) items.push(e);
      if (items.length === pageLimit || ++scanned >= 20_000) {
        exhausted = false;
        break;
      }
    }
    if (exhausted) return { items, nextPageToken: "" };
    const thread = await this.getThread(filter.threadId!);
    return { items, nextPageToken: thread && cursor < thread.lastSeq ? encodeToken([cursor]) : "" };
  }

  async listThreads(tenantId: string | undefined, pageSize: number, pageToken: string) {
    return this.warm.listThreads(tenantId, pageSize, pageToken);
  }

  /** Postgres's page, with the hot tier's fresher state of each turn and, on the last page, the turns not persisted yet. */
  async listTurns(threadId: string, pageSize: number, pageToken: string): Promise<Page<TurnRecord>> {
    const [page, hot] = await Promise.all([this.warm.listTurns(threadId, pageSize, pageToken), this.hot.threadTurns(threadId)]);
    const fresher = new Map(hot.map((t) => [t.turnId, t]));
    const items = page.items.map((t) => fresher.get(t.turnId) ?? t);
    if (page.nextPageToken || (pageToken !== "" && items.length === 0)) return { ...page, items };
    const lastSeq = items.at(-1)?.submittedSeq ?? 0;
    const unpersisted = hot.filter((t) => t.submittedSeq > lastSeq).sort((a, b) => a.submittedSeq - b.submittedSeq);
    return { ...page, items: [...items, ...unpersisted] };
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
