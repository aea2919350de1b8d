// Cold replay: a thread of `events` events whose first `archiveUpTo` are
// archived (objects of ≤ 10,000 events), read from seq 0 over gRPC until
// caught_up: cold → warm → hot. The archiving itself is timed too.
// Tier redis: seeded, persisted and archived in this process (an in-process
// Persister and an Archiver built as server/core.ts builds it, on an s3rver
// run by this process), then a server child is started on the same tiers.
// Tier memory: the same steps through the shared server's RPCs.
import { s3Credentials, startS3 } from "../../test/support/s3.js";
import { onInterrupt, runOnce } from "../cleanup.js";
import { openInProcess, startPersister } from "../in-process-tiers.js";
import {
  type Archived,
  archiveInProcess,
  archiveOverRpc,
  type LongThread,
  persistedInProcess,
  persistedOverRpc,
  seedInProcess,
  seedOverRpc,
  waitPersisted,
} from "../long-thread.js";
import type { PayloadSource } from "../payloads.js";
import { layoutRow, warningsNote, type Goal, type Measurement, type ScenarioResult } from "../result.js";
import { closeAndReport, type ServerUnderTest, startServerUnderTest } from "../server-under-test.js";
import { freshTierEnv, type Services } from "../tier-env.js";
import { verifyPersisted } from "../warm-checks.js";
import { archiveDecodeFloor } from "../archive-decode-floor.js";
import { measuredReplay, replayClients } from "./replay.js";

export interface ColdReplayParams {
  name: string;
  /** The tier's shared server: used on tier memory (its tiers cannot be opened from outside). */
  server: ServerUnderTest;
  services: Services;
  logLevel: string;
  profileDir?: string;
  events: number;
  archiveUpTo: number;
  payload: PayloadSource;
  persistTimeoutSeconds: number;
  goal?: Goal;
}

const maxEventsPerObject = 10_000;

/** Names the step a failure happened in (a Redis timeout, say, says nothing of where it came from). */
async function during<T>(step: string, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw new Error(`${step}: ${err instanceof Error ? `${err.name} ${err.message}` : String(err)}`, { cause: err });
  }
}

export async function coldReplay(p: ColdReplayParams): Promise<ScenarioResult> {
  const failures: string[] = [];
  const notes: string[] = [];
  let prepared: { thread: LongThread; archived: Archived; persisted: boolean };
  const replayed: Measurement[] = [];
  const floor: Measurement[] = [];
  /** Reads the thread with each client; `through` gives the server to read from (and may start one per client). */
  async function replayWithEach(thread: LongThread, through: (read: (server: ServerUnderTest) => Promise<void>) => Promise<void>) {
    for (const client of replayClients) {
      await through(async (server) => {
        replayed.push(...(await measuredReplay(p.name, server, client, thread, p.goal, `replay, ${client.name}`, failures)));
      });
    }
  }
  let layout: string;
  if (p.server.tier === "redis") {
    const s3 = await startS3("eventide-bench");
    const stopS3 = runOnce(() => s3.stop());
    const forgetS3 = onInterrupt(stopS3);
    const tiers = freshTierEnv("redis", p.services, {
      S3_ENDPOINT: s3.endpoint,
      S3_BUCKET: s3.bucket,
      S3_ACCESS_KEY_ID: s3Credentials.accessKeyId,
      S3_SECRET_ACCESS_KEY: s3Credentials.secretAccessKey,
      EVENTIDE_ARCHIVE_MAX_EVENTS: String(maxEventsPerObject),
    });
    // Between the in-process phase and the server's, nobody else would drop them on Ctrl-C.
    const forgetTiers = onInterrupt(() => tiers.drop());
    try {
      const t = await openInProcess(tiers, p.logLevel);
      try {
        // Persisting while seeding keeps Redis from holding the whole thread at once.
        const persister = startPersister(t);
        let thread: LongThread;
        let persisted: boolean;
        try {
          thread = await during("seeding", seedInProcess(t, p.events, p.payload));
          persisted = await during(
            "waiting for the persister",
            waitPersisted(persistedInProcess(t, thread.threadId), thread.lastSeq, p.persistTimeoutSeconds * 1000),
          );
        } finally {
          await persister.stop();
        }
        const archived = await during("archiving", archiveInProcess(t, thread.threadId, p.archiveUpTo));
        if (persisted && archived.problems.length === 0) {
          failures.push(...(await verifyPersisted(t.db, new Map([[thread.threadId, thread.lastSeq]]), p.archiveUpTo)).map((f) => `${p.name}: ${f}`));
        }
        if (archived.problems.length === 0) floor.push(...(await during("decoding the archives alone", archiveDecodeFloor(p.name, t.tiers.warm, t.tiers.cold, thread.threadId))));
        notes.push(...warningsNote(`${p.name}: the in-process roles`, t.warnings));
        prepared = { thread, archived, persisted };
      } finally {
        await t.close(false);
      }
      // A server of its own for each client: neither reads the objects the other one's replay cached.
      await replayWithEach(prepared.thread, async (read) => {
        const server = await startServerUnderTest({ tiers, ownsTiers: false, logLevel: p.logLevel, profileDir: p.profileDir });
        try {
          await read(server);
        } finally {
          await closeAndReport(server, `${p.name}: its server`, failures, notes);
        }
      });
      layout = "in-process+child";
    } finally {
      forgetTiers();
      await tiers.drop();
      forgetS3();
      await stopS3();
    }
  } else {
    const { baseUrl } = p.server;
    const thread = await seedOverRpc(baseUrl, p.events, p.payload);
    const persisted = await waitPersisted(persistedOverRpc(baseUrl, thread.threadId), thread.lastSeq, p.persistTimeoutSeconds * 1000);
    const archived = await archiveOverRpc(baseUrl, thread.threadId, p.archiveUpTo, maxEventsPerObject);
    prepared = { thread, archived, persisted };
    // The shared server: the second client's replay may find the objects in its cache.
    await replayWithEach(thread, (read) => read(p.server));
    layout = "server child";
  }

  const { thread, archived, persisted } = prepared;
  failures.push(...thread.problems.map((f) => `${p.name}: seeding: ${f}`));
  failures.push(...archived.problems.map((f) => `${p.name}: archiving: ${f}`));
  if (!persisted) notes.push(`${p.name}: the thread was not fully persisted after ${p.persistTimeoutSeconds} s`);
  const archiveRows: Measurement[] = [
    { scenario: p.name, metric: "archive events/s", value: archived.events / archived.seconds, unit: "events/s" },
    { scenario: p.name, metric: "archive MB/s (gzip objects)", value: archived.bytes / 1e6 / archived.seconds, unit: "MB/s" },
    { scenario: p.name, metric: "archive objects", value: archived.objects, unit: "count" },
    { scenario: p.name, metric: "events archived", value: archived.events, unit: "count" },
  ];
  return {
    measurements: [layoutRow(p.name, layout), ...archiveRows, ...replayed, ...floor],
    failures,
    notes,
  };
}
