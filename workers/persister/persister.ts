// The persister: moves every appended event from the hot tier into Postgres.
// It owns a fair share of the partitions (leases), reads their logs through a
// consumer group, commits each batch in one transaction (events + projections),
// acknowledges only after the commit, then trims the hot window. A crash
// anywhere leaves entries pending; the next owner adopts and redoes them, and
// ON CONFLICT DO NOTHING makes the redo harmless.
// It commits through several lanes at once: lane i reads the owned partitions
// p with p % lanes = i, through a feed of its own. A thread lives in one
// partition, so two lanes' transactions never touch the same thread's rows,
// and each thread's batches still commit one after the other, in order.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { StoredEvent } from "../../server/domain/records.js";
import type { Metrics } from "../../server/observability/metrics.js";
import type { FeedBatch, PartitionLeases, PersistFeed } from "../../server/tiers/hot/hot-log.js";
import type { WarmStore } from "../../server/tiers/warm/warm-store.js";
import { PersistGap } from "../../server/domain/errors.js";
import { firstGap } from "../../server/domain/seq-gaps.js";
import { sleep } from "../../server/domain/wait.js";
import { DataLossAlarm } from "../../server/observability/data-loss-alarm.js";

export interface PersisterOptions {
  /** One feed per lane (batches in flight at once); the feeds read disjoint partitions. */
  feeds: PersistFeed[];
  leases: PartitionLeases;
  warm: WarmStore;
  log: Logger;
  /** Events a batch (one transaction) holds at most; one append's events are never split. */
  batchEvents: number;
  /** How long a read waits for entries. */
  batchWaitMs: number;
  /** Events kept in a thread's hot stream below its persisted seq. */
  hotWindow: number;
  leaseMs: number;
  /** Called after each committed batch (metrics, benchmarks). */
  onCommitted?: (events: StoredEvent[]) => void;
  metrics?: Metrics;
  /** Told of a thread whose batch would leave a hole the hot tier cannot fill (its entries are then held, unacknowledged); without one, the hole is logged. */
  alarm?: DataLossAlarm;
}

/** How long an entry may sit pending with another consumer before an owner takes it (it was delivered to a former owner). */
const strandedEntryMs = 30_000;

export class Persister {
  readonly consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
  private readonly owned = new Set<number>();
  private leasesCheckedAt = 0;
  /** The lease check in progress: lanes share it rather than run their own. */
  private keepingLeases?: Promise<void>;

  constructor(private readonly opts: PersisterOptions) {
    if (opts.feeds.length === 0) throw new Error("a persister needs at least one feed");
  }

  async run(signal: AbortSignal): Promise<void> {
    const { log, feeds } = this.opts;
    log.info({ consumer: this.consumer, lanes: feeds.length }, "persister started");
    await Promise.all(feeds.map((feed, lane) => new PersistLane(this, feed, lane).run(signal)));
    for (const p of this.owned) await this.opts.leases.release(p, this.consumer).catch(() => {});
    log.info({ consumer: this.consumer }, "persister stopped");
  }

  /** The owned partitions that lane `lane` reads. */
  partitionsOf(lane: number): number[] {
    return [...this.owned].filter((p) => p % this.opts.feeds.length === lane);
  }

  /** What its lanes read: the settings it was built with. */
  get options(): PersisterOptions {
    return this.opts;
  }

  /** Keeps the leases (at most one check at a time; lanes calling meanwhile wait for it). */
  leasesKept(): Promise<void> {
    this.keepingLeases ??= this.keepLeases().finally(() => (this.keepingLeases = undefined));
    return this.keepingLeases;
  }

  /** Renews held leases and takes free partitions up to a fair share of the live persisters. */
  private async keepLeases(): Promise<void> {
    const { leases, leaseMs, feeds, log } = this.opts;
    if (Date.now() - this.leasesCheckedAt < leaseMs / 3) return;
    this.leasesCheckedAt = Date.now();
    for (const p of [...this.owned]) {
      if (!(await leases.renew(p, this.consumer, leaseMs))) {
        this.owned.delete(p);
        log.warn({ partition: p }, "persister lost a partition lease");
      }
    }
    // Entries a former owner's last read received after this persister adopted the partition.
    for (const p of this.owned) await feeds[p % feeds.length].adopt(p, this.consumer, strandedEntryMs);
    const live = await leases.heartbeat(this.consumer, leaseMs);
    const partitions = feeds[0].partitions;
    const share = Math.ceil(partitions / Math.max(1, live));
    for (let p = 0; p < partitions && this.owned.size < share; p++) {
      if (this.owned.has(p) || !(await leases.acquire(p, this.consumer, leaseMs))) continue;
      // The lane that will read it adopts it (a feed forgets its read-ahead on adopting).
      await this.opts.feeds[p % this.opts.feeds.length].adopt(p, this.consumer);
      this.owned.add(p);
      log.info({ partition: p }, "persister took a partition");
    }
    while (this.owned.size > share) {
      const p = [...this.owned].pop()!;
      this.owned.delete(p);
      await leases.release(p, this.consumer);
    }
  }
}

/** One lane of a persister: reads its partitions' batches and commits them, one at a time. */
class PersistLane {
  private trimming?: Promise<void>;

  constructor(private readonly persister: Persister, private readonly feed: PersistFeed, private readonly lane: number) {}

  async run(signal: AbortSignal): Promise<void> {
    const { log, batchEvents, batchWaitMs, leaseMs } = this.persister.options;
    const { consumer } = this.persister;
    let failures = 0;
    while (!signal.aborted) {
      let partitions: number[] = [];
      try {
        await this.persister.leasesKept();
        partitions = this.persister.partitionsOf(this.lane);
        if (partitions.length === 0) continue;
        const batch = await this.feed.nextBatch(partitions, consumer, batchEvents, batchWaitMs, signal);
        if (batch.entries.size > 0) await this.persist(batch);
        failures = 0;
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        // Never sleep past a lease renewal: a waiting persister keeps its partitions.
        const waitMs = Math.min(leaseMs / 3, 30_000, 100 * 2 ** Math.min(failures, 9));
        log.warn({ err: String(err), failures, retryInMs: waitMs, lane: this.lane }, "persister batch failed; retrying (nothing is dropped)");
        await sleep(waitMs, signal);
      } finally {
        if (partitions.length === 0 && !signal.aborted) await sleep(batchWaitMs, signal);
      }
    }
    // Entries the feed read ahead while the last batch committed are pending for
    // this consumer: finish them too rather than leave them to the next owner.
    const partitions = this.persister.partitionsOf(this.lane);
    if (partitions.length > 0) {
      try {
        const rest = await this.feed.nextBatch(partitions, consumer, batchEvents, batchWaitMs, signal);
        if (rest.entries.size > 0) await this.persist(rest);
      } catch (err) {
        log.warn({ err: String(err), lane: this.lane }, "persister could not finish the batch read ahead; the next owner will");
      }
    }
    await this.trimmed();
  }

  /**
   * Commit, then acknowledge, then trim: the order is what makes a crash harmless.
   * A batch in hand is finished even when the signal aborts (shutdown): the
   * tiers close only after the persister returns, and a committed batch left
   * unacknowledged would be redone by the next owner.
   * Trimming the hot window runs while the next batch is read and committed
   * (at most one trim in flight): it is only housekeeping below what is
   * committed, and each trim covers everything below its seq, so a failed one
   * is made good by the thread's next batch.
   */
  private async persist(batch: FeedBatch): Promise<void> {
    const { metrics, onCommitted, hotWindow, log } = this.persister.options;
    const { events, held } = await this.commit(batch);
    await this.feed.ack(batch, held);
    metrics?.persisted(events);
    onCommitted?.(events);
    const persistedThrough = new Map<string, number>();
    for (const e of events) persistedThrough.set(e.threadId, Math.max(persistedThrough.get(e.threadId) ?? 0, e.seq));
    await this.trimmed();
    this.trimming = Promise.all([...persistedThrough].map(([threadId, seq]) => this.feed.markPersisted(threadId, seq, hotWindow))).then(
      () => undefined,
      (err) => log.warn({ err: String(err) }, "trimming the hot window failed; the next batch trims it"),
    );
    log.debug({ events: batch.events.length, threads: persistedThrough.size, lane: this.lane }, "batch persisted");
  }

  /**
   * Commits the batch's events; returns them, with any gap's events filled in,
   * and the threads held back. The warm store refuses a batch that would leave
   * a hole in a thread's log (an entry not handed out, or one whose events the
   * hot stream no longer held): the missing seqs are read again from the hot
   * tier and committed with the batch. A thread whose missing seqs the hot
   * tier no longer has either raises the alarm and is held: none of its events
   * are committed and its entries are not acknowledged (an operator must
   * look), while the other threads of the batch, and of the partition, go on.
   */
  private async commit(batch: FeedBatch): Promise<{ events: StoredEvent[]; held: Set<string> }> {
    const { warm, log, alarm = new DataLossAlarm(log) } = this.persister.options;
    let events = batch.events;
    let namedThrough = batch.namedThrough;
    const held = new Set<string>();
    for (let fills = 0; ; fills++) {
      try {
        await warm.persistBatch(events, namedThrough);
        return { events, held };
      } catch (err) {
        // A second gap after a fill is another writer's doing (a former owner still committing): retry later.
        if (!(err instanceof PersistGap) || fills > 0) throw err;
        const found = await Promise.all(err.gaps.map((g) => this.feed.readRange(g.threadId, g.fromSeq, g.toSeq)));
        const filled: StoredEvent[] = [];
        err.gaps.forEach((gap, i) => {
          const hole = firstGap(found[i].map((e) => e.seq), gap.fromSeq - 1, gap.toSeq);
          if (!hole) return filled.push(...found[i]);
          const detail = "neither persisted nor in the hot tier: the thread's entries stay unacknowledged; its partition's other threads go on";
          alarm.raise({ threadId: gap.threadId, ...hole, foundBy: "persister", detail });
          held.add(gap.threadId);
        });
        if (filled.length > 0) log.warn({ gaps: err.gaps, lane: this.lane }, "a batch skipped seqs still in the hot tier; committing them with it");
        events = [...events.filter((e) => !held.has(e.threadId)), ...filled].sort((a, b) => a.seq - b.seq);
        namedThrough = new Map([...namedThrough].filter(([threadId]) => !held.has(threadId)));
      }
    }
  }

  /** Waits for the hot-window trim in flight, if any. */
  private async trimmed(): Promise<void> {
    await this.trimming;
    this.trimming = undefined;
  }
}
