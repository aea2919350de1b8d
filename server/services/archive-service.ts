// ArchiveService: archive a thread on demand, inspect its archives.
import type { ServiceImpl } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Archive, ArchiveSchema, type ArchiveService } from "../../gen/eventide/v1/archive_service_pb.js";
import { callerOf } from "../auth.js";
import { Busy, NotFound, OutOfRange } from "../domain/errors.js";
import type { EventLog } from "../log/event-log.js";
import type { ArchiveRecord } from "../tiers/warm/warm-store.js";
import type { Archiver } from "../../workers/archiver/archiver.js";
import { ownedThread, visibleTo } from "./ownership.js";
import * as v from "./validation.js";

export function archiveService(deps: { log: EventLog; archiver: Archiver }): Partial<ServiceImpl<typeof ArchiveService>> {
  const { log, archiver } = deps;
  return {
    async archiveThread(req, ctx) {
      // Every input is checked before anything is looked up.
      const threadId = v.requireUlid("thread_id", req.threadId);
      const upToSeq = v.seq("up_to_seq", req.upToSeq);
      const thread = await ownedThread(log, callerOf(ctx), threadId);
      if (upToSeq > 0) {
        // Only what Postgres holds can be archived: a seq past it would quietly archive less than asked.
        const persisted = (await log.warm.getThread(threadId))?.lastSeq ?? 0;
        if (upToSeq > persisted) throw new OutOfRange(`up_to_seq ${upToSeq} is past the thread's last persisted seq ${persisted}; nothing was archived`);
      }
      const result = await archiver.archiveThread(thread.threadId, upToSeq || Number.MAX_SAFE_INTEGER);
      if (result === "busy") throw new Busy(`another archiver is working on thread ${thread.threadId}; retry shortly`);
      return { archives: result.map(toArchive) };
    },

    async listArchives(req, ctx) {
      const thread = await ownedThread(log, callerOf(ctx), v.requireUlid("thread_id", req.threadId));
      return { archives: (await log.warm.listArchives(thread.threadId)).map(toArchive) };
    },

    async getArchive(req, ctx) {
      const archiveId = v.requireUlid("archive_id", req.archiveId);
      const archive = await log.warm.getArchive(archiveId);
      if (!archive || !visibleTo(callerOf(ctx), archive.tenantId)) throw new NotFound("archive", archiveId);
      return { archive: toArchive(archive) };
    },
  };
}

function toArchive(a: ArchiveRecord): Archive {
  return create(ArchiveSchema, {
    archiveId: a.archiveId,
    threadId: a.threadId,
    tenantId: a.tenantId,
    fromSeq: BigInt(a.fromSeq),
    toSeq: BigInt(a.toSeq),
    objectKey: a.objectKey,
    eventCount: BigInt(a.eventCount),
    bytes: BigInt(a.bytes),
    sha256: a.sha256,
    createdAt: timestampFromMs(a.createdAt),
  });
}
