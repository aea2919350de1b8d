// TailEvents: history from storage, one caught-up marker, then live. The
// cursor (last seq scanned) is the only state: whatever the live feed misses
// (a lagging subscriber, a gap) is read back from storage, so delivery is
// strictly increasing with no gap and no duplicate.
import type { StoredEvent } from "../domain/records.js";
import type { LiveSource } from "../tiers/hot/hot-log.js";
import { type LiveDelivery, LiveSubscription } from "../live/subscription.js";
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
  /** Live events that arrived together (never empty): the same array for every unfiltered tail that took them all. */
  | { kind: "live"; events: StoredEvent[] }
  /** History read from storage, a page at a time (never empty). */
  | { kind: "events"; events: StoredEvent[] }
  | { kind: "caught-up"; lastSeq: number }
  | { kind: "heartbeat"; scannedSeq: number };

export interface TailOptions {
  reader: EventReader;
  live: LiveSource;
  heartbeatMs: number;
  bufferBound: number;
  /** Live events straight to the client as bytes while the tail is caught up (unfiltered tails only). */
  delivery?: LiveDelivery;
}

export async function* tail(req: TailRequest, opts: TailOptions, signal: AbortSignal): AsyncGenerator<TailItem> {
  const matches = eventMatcher(req);
  const filtered = req.types.length > 0 || req.turnId !== "";
  // Subscribe before reading history: anything appended meanwhile is buffered, not lost.
  const subscription = req.follow
    ? new LiveSubscription(opts.live, req.threadId, opts.bufferBound, opts.heartbeatMs, filtered ? undefined : opts.delivery)
    : undefined;
  let cursor = req.afterSeq;
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
      const wake = await subscription.next(lastSentAt, signal, cursor);
      // Written straight to the client meanwhile (direct delivery): the cursor moved on.
      if (wake.delivered) {
        cursor = wake.delivered.cursor;
        lastSentAt = wake.delivered.at;
      }
      if (signal.aborted) return;
      if (wake.kind === "events") {
        const { events } = wake;
        let run: StoredEvent[] = [];
        for (const event of events) {
          if (event.seq <= cursor) continue;
          if (event.seq > cursor + 1) {
            // A gap: what came before it goes out, then storage fills it.
            if (run.length > 0) {
              lastSentAt = Date.now();
              yield { kind: "live", events: run };
              run = [];
            }
            for await (const item of catchUp()) {
              lastSentAt = Date.now();
              yield item;
            }
            if (event.seq <= cursor) continue;
          }
          cursor = event.seq;
          if (matches(event)) run.push(event);
        }
        if (run.length > 0) {
          lastSentAt = Date.now();
          yield { kind: "live", events: run.length === events.length ? events : run };
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
