// One long thread for the replay scenarios: seeded, persisted, optionally
// archived. On tier redis the bench opens the tiers itself (seeding through
// hot.append, archiving with an Archiver built as server/core.ts builds it);
// on tier memory the tiers live inside the server process, so the same steps
// go through its RPCs (AppendEvents, ListThreads, ArchiveThread).
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { ArchiveService } from "../gen/eventide/v1/archive_service_pb.js";
import { buildCore } from "../server/core.js";
import { Connections } from "./connections.js";
import { nowMs, sleep } from "./clock.js";
import type { InProcessTiers } from "./in-process-tiers.js";
import { benchEventType, type PayloadSource } from "./payloads.js";
import { checkRanges, createThreads, seedThroughHot } from "./seed.js";

export interface LongThread {
  threadId: string;
  /** Seqs run 1 (thread.created) to lastSeq. */
  lastSeq: number;
  seedSeconds: number;
  problems: string[];
}

export interface Archived {
  seconds: number;
  objects: number;
  events: number;
  /** Compressed bytes written. */
  bytes: number;
  problems: string[];
}

/** Events per append while seeding, and appends in flight. */
const seedBatch = 1000;
const seedConcurrency = 4;

export async function seedInProcess(t: InProcessTiers, events: number, payload: PayloadSource): Promise<LongThread> {
  const [threadId] = await createThreads(t.tiers.hot, 1);
  const seeded = await seedThroughHot(t.tiers.hot, { threadIds: [threadId], events, batch: seedBatch, concurrency: seedConcurrency, payload });
  return { threadId, lastSeq: seeded.lastSeq.get(threadId)!, seedSeconds: seeded.seconds, problems: seeded.problems };
}

export async function seedOverRpc(baseUrl: string, events: number, payload: PayloadSource): Promise<LongThread> {
  const conns = new Connections(baseUrl, 2);
  try {
    const [threadId] = await conns.createThreads(1);
    const ranges: [number, number][] = [];
    let next = 0;
    const started = nowMs();
    await Promise.all(
      Array.from({ length: seedConcurrency }, async (_, a) => {
        for (let i = next++; i * seedBatch < events; i = next++) {
          const size = Math.min(seedBatch, events - i * seedBatch);
          const batch = Array.from({ length: size }, () => ({ type: benchEventType, payload: payload().object }));
          const res = await conns.events(a).appendEvents({ threadId, events: batch });
          ranges.push([Number(res.firstSeq), Number(res.lastSeq)]);
        }
      }),
    );
    const seedSeconds = (nowMs() - started) / 1000;
    const { lastSeq, problems } = checkRanges(new Map([[threadId, ranges]]));
    return { threadId, lastSeq: lastSeq.get(threadId)!, seedSeconds, problems };
  } finally {
    conns.close();
  }
}

/** Waits until the warm tier's threads.last_seq reaches the thread's end; false on timeout. */
export async function waitPersisted(
  persistedThrough: () => Promise<number>,
  lastSeq: number,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = nowMs() + timeoutMs;
  while (nowMs() < deadline) {
    if ((await persistedThrough()) >= lastSeq) return true;
    await sleep(100);
  }
  return false;
}

export function persistedInProcess(t: InProcessTiers, threadId: string): () => Promise<number> {
  return async () => (await t.tiers.warm.getThread(threadId))?.lastSeq ?? 0;
}

/** ListThreads reads the warm tier: its last_seq is what the server's persister committed. */
export function persistedOverRpc(baseUrl: string, threadId: string): () => Promise<number> {
  return async () => {
    const conns = new Connections(baseUrl, 1);
    try {
      let pageToken = "";
      do {
        const page = await conns.turns.listThreads({ pageSize: 1000, pageToken });
        const found = page.threads.find((th) => th.threadId === threadId);
        if (found) return Number(found.lastSeq);
        pageToken = page.nextPageToken;
      } while (pageToken);
      return 0;
    } finally {
      conns.close();
    }
  };
}

export async function archiveInProcess(t: InProcessTiers, threadId: string, upToSeq: number): Promise<Archived> {
  const { archiver } = buildCore(t.config, t.tiers, t.log);
  const started = nowMs();
  const written = await archiver.archiveThread(threadId, upToSeq);
  const seconds = (nowMs() - started) / 1000;
  if (written === "busy") return { seconds, objects: 0, events: 0, bytes: 0, problems: ["the thread was busy (another archiver?)"] };
  return summarize(seconds, written, upToSeq, t.config.archiveMaxEvents);
}

export async function archiveOverRpc(baseUrl: string, threadId: string, upToSeq: number, maxEventsPerObject: number): Promise<Archived> {
  const sessionManager = new Http2SessionManager(baseUrl);
  try {
    const client = createClient(ArchiveService, createGrpcTransport({ baseUrl, sessionManager }));
    const started = nowMs();
    const res = await client.archiveThread({ threadId, upToSeq: BigInt(upToSeq) }, { timeoutMs: 300_000 });
    const seconds = (nowMs() - started) / 1000;
    const written = res.archives.map((a) => ({ fromSeq: Number(a.fromSeq), toSeq: Number(a.toSeq), eventCount: Number(a.eventCount), bytes: Number(a.bytes) }));
    return summarize(seconds, written, upToSeq, maxEventsPerObject);
  } finally {
    sessionManager.abort();
  }
}

/** The objects must tile seqs 1..upToSeq, none larger than the limit. */
function summarize(
  seconds: number,
  written: { fromSeq: number; toSeq: number; eventCount: number; bytes: number }[],
  upToSeq: number,
  maxEventsPerObject: number,
): Archived {
  const problems: string[] = [];
  let next = 1;
  for (const a of [...written].sort((x, y) => x.fromSeq - y.fromSeq)) {
    if (a.fromSeq !== next || a.eventCount !== a.toSeq - a.fromSeq + 1 || a.eventCount > maxEventsPerObject) {
      if (problems.length < 3) problems.push(`archive ${a.fromSeq}-${a.toSeq} (${a.eventCount} events) where seq ${next} was due`);
    }
    next = a.toSeq + 1;
  }
  if (next !== upToSeq + 1) problems.push(`archives end at seq ${next - 1}, asked up to ${upToSeq}`);
  return {
    seconds,
    objects: written.length,
    events: written.reduce((n, a) => n + a.eventCount, 0),
    bytes: written.reduce((n, a) => n + a.bytes, 0),
    problems,
  };
}
