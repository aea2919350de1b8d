// Filling threads fast, without a server: batches straight through the hot
// tier's append (the same Lua script AppendEvents runs), several in flight.
// Every acknowledged range is kept, to check the seqs came out gapless.
import type { JsonObject } from "@bufbuild/protobuf";
import { defaultTenant } from "../server/auth.js";
import { newId } from "../server/domain/ids.js";
import type { NewEvent } from "../server/domain/records.js";
import type { AppendResult, HotLog } from "../server/tiers/hot/hot-log.js";
import { nowMs } from "./clock.js";
import { benchEventType, type PayloadSource } from "./payloads.js";

/** Creates threads as CreateThread does: `thread.created` is seq 1. */
export async function createThreads(hot: HotLog, n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const threadId = hot.newThreadId();
      await hot.append({
        tenantId: defaultTenant,
        threadId,
        create: { metadata: {} },
        events: [newEvent("thread.created", { metadata: {} })],
      });
      return threadId;
    }),
  );
}

export interface SeedParams {
  threadIds: string[];
  /** Events in all, over the threads round-robin, in batches of `batch`. */
  events: number;
  batch: number;
  /** Appends in flight at once. */
  concurrency: number;
  payload: PayloadSource;
}

export interface Seeded {
  seconds: number;
  events: number;
  /** Each thread's last seq after seeding. */
  lastSeq: Map<string, number>;
  /** Overlapping or missing seqs among the acknowledged appends (a hot-tier bug). */
  problems: string[];
}

export async function seedThroughHot(hot: HotLog, p: SeedParams): Promise<Seeded> {
  const ranges = new Map<string, [number, number][]>(p.threadIds.map((id) => [id, []]));
  let next = 0;
  const started = nowMs();
  await Promise.all(
    Array.from({ length: p.concurrency }, async () => {
      for (let i = next++; i * p.batch < p.events; i = next++) {
        const threadId = p.threadIds[i % p.threadIds.length];
        const size = Math.min(p.batch, p.events - i * p.batch);
        const events = Array.from({ length: size }, () => benchEvent(p.payload));
        ranges.get(threadId)!.push(appendedRange(await hot.append({ tenantId: defaultTenant, threadId, events })));
      }
    }),
  );
  const seconds = (nowMs() - started) / 1000;
  const { lastSeq, problems } = checkRanges(ranges);
  return { seconds, events: p.events, lastSeq, problems };
}

/** After `thread.created` (seq 1), the ranges must tile 2..last with no overlap and no hole. */
export function checkRanges(ranges: Map<string, [number, number][]>): { lastSeq: Map<string, number>; problems: string[] } {
  const lastSeq = new Map<string, number>();
  const problems: string[] = [];
  for (const [threadId, list] of ranges) {
    list.sort((a, b) => a[0] - b[0]);
    let expected = 2;
    for (const [first, last] of list) {
      if (first !== expected) problems.push(`thread ${threadId}: append got seqs ${first}-${last}, expected to start at ${expected}`);
      expected = Math.max(expected, last + 1);
    }
    lastSeq.set(threadId, expected - 1);
  }
  return { lastSeq, problems };
}

/** The seqs a fresh append got (an append without client ids or a turn is never a duplicate). */
export function appendedRange(res: AppendResult): [number, number] {
  if (res.kind !== "appended") throw new Error(`a bench append came back as ${res.kind}`);
  return [res.events[0].seq, res.events[res.events.length - 1].seq];
}

/** A bench event with the source's next payload. */
export function benchEvent(payloads: PayloadSource): NewEvent {
  const { object, json } = payloads();
  return newEvent(benchEventType, object, json);
}

function newEvent(type: string, payload: JsonObject, payloadJson?: string): NewEvent {
  return { eventId: newId(), clientSuppliedId: false, turnId: "", type, payload, payloadJson, metadata: {}, schemaVersion: 1, level: "info" };
}
