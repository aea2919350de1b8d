// The archiver: moves persisted events to cold storage, oldest first, one
// object per contiguous seq range. Upload, read back and verify, then in one
// transaction record the archive and delete the rows. Keys are deterministic
// and (thread_id, from_seq) is unique, so a crash at any step is resumed by
// doing the same again: nothing lost, nothing twice.
import type { Logger } from "pino";
import type { Metrics } from "../../server/observability/metrics.js";
import { newId } from "../../server/domain/ids.js";
import type { ArchiveRecord, WarmStore } from "../../server/tiers/warm/warm-store.js";
import type { ColdStore } from "../../server/tiers/cold/cold-store.js";
import { archiveKey, encodeArchive, sha256Hex } from "../../server/tiers/cold/archive-format.js";
import { sleep } from "../../server/domain/wait.js";

export interface ArchiverOptions {
  warm: WarmStore;
  cold: ColdStore;
  log: Logger;
  /** Events older than this (ms) are archived; threads idle that long are archived whole. */
  archiveAfterMs: number;
  /** At most this many events an object. */
  maxEventsPerObject: number;
  /** How often the policy loop looks for work. */
  intervalMs: number;
  /** An archiver's claim on a thread while it works on it. */
  leaseMs: number;
  /** Threads idle longer than this are erased everywhere; 0 keeps them forever. */
  retentionMs: number;
  /** Erases a thread from every tier (the same path as DeleteThread) if still idle since the cutoff. */
  eraseIfIdle: (thread: { threadId: string; tenantId: string }, cutoff: number) => Promise<boolean>;
  metrics?: Metrics;
}

export class ArchiveVerificationFailed extends Error {}

export class Archiver {
  constructor(private readonly opts: ArchiverOptions) {}

  /** The policy loop: archive what is old enough, back off while a tier is down. */
  async run(signal: AbortSignal): Promise<void> {
    const { log } = this.opts;
    log.info({ archiveAfterMs: this.opts.archiveAfterMs }, "archiver started");
    let failures = 0;
    while (!signal.aborted) {
      try {
        const archived = await this.archiveDue(signal);
        const erased = await this.eraseExpired(signal);
        failures = 0;
        if (archived === 0 && erased === 0) await sleep(this.opts.intervalMs, signal);
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        const waitMs = Math.min(60_000, 500 * 2 ** Math.min(failures, 7));
        log.warn({ err: String(err), failures, retryInMs: waitMs }, "archiving failed; retrying (Postgres keeps the rows)");
        await sleep(waitMs, signal);
      }
    }
    log.info("archiver stopped");
  }

  /** Retention: erases threads idle longer than retentionMs; returns how many. */
  async eraseExpired(signal: AbortSignal): Promise<number> {
    if (this.opts.retentionMs <= 0) return 0;
    let erased = 0;
    const cutoff = Date.now() - this.opts.retentionMs;
    for (const threadId of await this.opts.warm.idleThreads(cutoff, 100)) {
      if (signal.aborted) break;
      const thread = await this.opts.warm.getThread(threadId);
      if (thread && (await this.opts.eraseIfIdle(thread, cutoff))) erased++;
    }
    if (erased) this.opts.log.info({ erased }, "retention erased idle threads");
    return erased;
  }

  /** One pass of the policy; returns how many objects it wrote. */
  async archiveDue(signal: AbortSignal): Promise<number> {
    const cutoff = Date.now() - this.opts.archiveAfterMs;
    let written = 0;
    for (const threadId of await this.opts.warm.archiveCandidates(cutoff, 100)) {
      if (signal.aborted) break;
      const idle = ((await this.opts.warm.getThread(threadId))?.updatedAt ?? 0) < cutoff;
      // An idle thread goes whole; a busy one only up to its events older than the cutoff.
      const upToSeq = idle ? Number.MAX_SAFE_INTEGER : await this.opts.warm.lastSeqBefore(threadId, cutoff);
      const archives = await this.archiveThread(threadId, upToSeq, signal);
      if (archives !== "busy") written += archives.length;
    }
    return written;
  }

  /**
   * Archives a thread's persisted events with seq <= upToSeq, in objects of at
   * most maxEventsPerObject. Returns the archives written (empty when there was
   * nothing to do), or "busy" when another archiver holds the thread.
   */
  async archiveThread(threadId: string, upToSeq: number, signal?: AbortSignal): Promise<ArchiveRecord[] | "busy"> {
    const { warm, log } = this.opts;
    const written = await warm.withArchiveLease(threadId, this.opts.leaseMs, async () => {
      const archives: ArchiveRecord[] = [];
      for (;;) {
        if (signal?.aborted) break;
        const events = await warm.oldestEvents(threadId, upToSeq, this.opts.maxEventsPerObject);
        if (events.length === 0) break;
        archives.push(await this.archiveRange(events));
        if (archives.length % 10 === 0) {
          log.info({ threadId, objects: archives.length, throughSeq: events[events.length - 1].seq }, "archiving progress");
        }
      }
      return archives;
    });
    if (written?.length) {
      log.info({ threadId, objects: written.length, events: written.reduce((n, a) => n + a.eventCount, 0) }, "thread archived");
    }
    return written ?? "busy";
  }

  private async archiveRange(events: Awaited<ReturnType<WarmStore["oldestEvents"]>>): Promise<ArchiveRecord> {
    const first = events[0];
    const last = events[events.length - 1];
    if (last.seq - first.seq + 1 !== events.length) {
      throw new Error(`thread ${first.threadId}: seqs ${first.seq}..${last.seq} are not contiguous in Postgres`);
    }
    const body = encodeArchive(events);
    const record: ArchiveRecord = {
      archiveId: newId(),
      threadId: first.threadId,
      tenantId: first.tenantId,
      fromSeq: first.seq,
      toSeq: last.seq,
      objectKey: archiveKey(first.tenantId, first.threadId, first.seq, last.seq),
      eventCount: events.length,
      bytes: body.length,
      sha256: sha256Hex(body),
      createdAt: Date.now(),
    };
    await this.opts.cold.put(record.objectKey, body);
    // Never delete rows on the word of a PUT: read the object back first.
    const stored = await this.opts.cold.verify(record.objectKey);
    if (!stored || stored.bytes !== record.bytes || stored.sha256 !== record.sha256) {
      throw new ArchiveVerificationFailed(`object ${record.objectKey} did not read back as written (${JSON.stringify(stored)})`);
    }
    await this.opts.warm.commitArchive(record);
    this.opts.metrics?.archived(record);
    return record;
  }
}
