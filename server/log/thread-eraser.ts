// DeleteThread and retention: a thread leaves every tier, and a tombstone
// stays so its id answers NOT_FOUND and is never reused. Hot goes first (no
// new appends), then Postgres (rows, behind the tombstone row the persister
// respects), then the cold objects: those Postgres knew of, plus any orphan
// left under the thread's prefix by an archiver that crashed before recording.
import type { Logger } from "pino";
import type { ThreadRecord } from "../domain/records.js";
import type { ColdStore } from "../tiers/cold/cold-store.js";
import type { HotLog } from "../tiers/hot/hot-log.js";
import type { WarmStore } from "../tiers/warm/warm-store.js";
import type { ArchiveReader } from "./archive-reader.js";

export class ThreadEraser {
  constructor(
    private readonly tiers: { hot: HotLog; warm: WarmStore; cold: ColdStore },
    private readonly archives: ArchiveReader,
    private readonly log: Logger,
  ) {}

  /**
   * Retention: erases the thread only if it is still idle since `cutoff` by
   * the hot tier's clock too (Postgres trails it by the persister's lag).
   */
  async eraseIfIdle(thread: Pick<ThreadRecord, "threadId" | "tenantId">, cutoff: number): Promise<boolean> {
    const current = await this.tiers.hot.getThread(thread.threadId);
    if (current && current.status !== "deleted" && current.updatedAt >= cutoff) return false;
    await this.erase(thread);
    return true;
  }

  async erase(thread: Pick<ThreadRecord, "threadId" | "tenantId">): Promise<{ objects: number }> {
    const { hot, warm, cold } = this.tiers;
    await hot.deleteThread(thread.threadId);
    const recorded = await warm.eraseThread(thread.threadId, thread.tenantId);
    const orphans = await cold.list(`threads/${thread.tenantId}/${thread.threadId}/`);
    const keys = [...new Set([...recorded, ...orphans])];
    await cold.delete(keys);
    this.archives.forget(keys);
    this.log.info({ threadId: thread.threadId, objects: keys.length }, "thread erased from every tier");
    return { objects: keys.length };
  }
}
