// TailEvents: history from storage, one caught-up marker, then live. The
// cursor (last seq scanned) is the only state: whatever the live feed misses
// (a lagging subscriber, a gap) is read back from storage, so delivery is
// strictly increasing with no gap and no duplicate.
import type { StoredEvent } from "../domain/records.js";
import type { LiveSource } from "../tiers/hot/hot-log.js";
import { LiveSubscription } from "../live/subscription.js";
import { eventMatcher } from "../log/event-log.js";

/** Where history comes from: every tier, stitched (EventLog). */
export interface EventReader {
  /** Pages of events with seq > afterSeq, contiguous, to the end of the log as it stands. */
  scanPages(threadId: string, afterSeq: number, signal?: AbortSignal): AsyncIterable<StoredEvent[]>;
}

export interface TailRequest {
  threadId: string;
  afterSeq: number;
  follow: boolean;
  /** Type prefixes; empty = every type. */
  types: string[];
  turnId: string;
}

export type TailItem =
  | { kind: "event"; event: StoredEvent }
  /** History read from storage, a page at a time (never empty). */
  | { kind: "events"; events: StoredEvent[] }
  | { kind: "caught-up"; lastSeq: number }
  | { kind: "heartbeat"; scannedSeq: number };

export interface TailOptions {
  reader: EventReader;
  live: LiveSource;
  heartbeatMs: number;
  bufferBound: number;
}

export async function* tail(req: TailRequest, opts: TailOptions, signal: AbortSignal): AsyncGenerator<TailItem> {
  const matches = eventMatcher(req);
  // Subscribe before reading history: anything appended meanwhile is buffered, not lost.
  const subscription = req.follow ? new LiveSubscription(opts.live, req.threadId, opts.bufferBound) : undefined;
  let cursor = req.afterSeq;

  const filtered = req.types.length > 0 || req.turnId !== "";
  /** Reads storage from the cursor to its current end. */
  async function* catchUp(): AsyncGenerator<TailItem> {
    for await (const page of opts.reader.scanPages(req.threadId, cursor, signal)) {
      cursor = page[page.length - 1].seq;
      const events = filtered ? page.filter(matches) : page;
      if (events.length > 0) yield { kind: "events", events };
    }
  }

  try {
    yield* catchUp();
    yield { kind: "caught-up", lastSeq: cursor };
    if (!subscription) return;
    // Heartbeats count from the last item sent, so a filtered tail that skips
    // every live event still shows it is alive (and how far it scanned).
    let lastSentAt = Date.now();
    while (!signal.aborted) {
      const wake = await subscription.next(Math.max(0, lastSentAt + opts.heartbeatMs - Date.now()), signal);
      if (signal.aborted) return;
      if (wake.kind === "events") {
        for (const event of wake.events) {
          if (event.seq <= cursor) continue;
          if (event.seq > cursor + 1) {
            for await (const item of catchUp()) {
              lastSentAt = Date.now();
              yield item;
            }
            if (event.seq <= cursor) continue;
          }
          cursor = event.seq;
          if (matches(event)) {
            lastSentAt = Date.now();
            yield { kind: "event", event };
          }
        }
      } else {
        // After an overflow, or when idle (a cheap poll that also covers a missed wake-up).
        for await (const item of catchUp()) {
          lastSentAt = Date.now();
          yield item;
        }
      }
      if (Date.now() - lastSentAt >= opts.heartbeatMs) {
        lastSentAt = Date.now();
        yield { kind: "heartbeat", scannedSeq: cursor };
      }
    }
  } finally {
    subscription?.close();
  }
}
