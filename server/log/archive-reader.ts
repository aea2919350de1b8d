// Reads archived events back from cold storage. An object is fetched whole in
// its compressed form (a bounded LRU keeps recent ones), checked against the
// sha256 recorded when it was written, and only then decoded, streaming, line
// by line: a corrupt object answers DATA_LOSS, never wrong events.
import { Readable } from "node:stream";
import { DataLoss } from "../domain/errors.js";
import type { StoredEvent } from "../domain/records.js";
import { decodeArchivePages, sha256Hex } from "../tiers/cold/archive-format.js";
import type { ColdStore } from "../tiers/cold/cold-store.js";
import type { ArchiveRecord } from "../tiers/warm/warm-store.js";

export class ArchiveReader {
  private readonly cache = new Map<string, Buffer>();
  private cachedBytes = 0;

  constructor(private readonly cold: ColdStore, private readonly cacheBytes: number) {}

  /**
   * The archive's events with seq > afterSeq, in order, a decompressed chunk at a time (never an empty page).
   * `body`: its object, if the caller is fetching it already (see object()).
   */
  async *pages(archive: ArchiveRecord, afterSeq: number, body: Promise<Buffer> = this.object(archive)): AsyncGenerator<StoredEvent[]> {
    for await (const page of decodeArchivePages(Readable.from([await body]))) {
      if (page[page.length - 1].seq <= afterSeq) continue;
      yield page[0].seq > afterSeq ? page : page.filter((e) => e.seq > afterSeq);
    }
  }

  /** The archive's object, checked against its recorded size and sha256 (from the cache if it holds it). */
  async object(archive: ArchiveRecord): Promise<Buffer> {
    const cached = this.cache.get(archive.objectKey);
    if (cached) {
      // Most recently used goes last.
      this.cache.delete(archive.objectKey);
      this.cache.set(archive.objectKey, cached);
      return cached;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of await this.cold.get(archive.objectKey)) chunks.push(Buffer.from(chunk as Uint8Array));
    const body = Buffer.concat(chunks);
    if (body.length !== archive.bytes || sha256Hex(body) !== archive.sha256) {
      throw new DataLoss(`archive object ${archive.objectKey} does not match its recorded size and sha256`);
    }
    if (body.length <= this.cacheBytes) {
      this.cache.set(archive.objectKey, body);
      this.cachedBytes += body.length;
      for (const [key, value] of this.cache) {
        if (this.cachedBytes <= this.cacheBytes) break;
        this.cache.delete(key);
        this.cachedBytes -= value.length;
      }
    }
    return body;
  }

  forget(objectKeys: string[]): void {
    for (const key of objectKeys) {
      const value = this.cache.get(key);
      if (value) this.cachedBytes -= value.length;
      this.cache.delete(key);
    }
  }
}
