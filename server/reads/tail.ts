// TailEvents: history from storage, one caught-up marker, then live. The
// cursor (last seq scanned) is the only state: whatever the live feed misses
// (a lagging subscriber, a gap) is read back from storage, so delivery is
// strictly increasing with no gap and no duplicate.
import type { StoredEvent } from "../domain/records.js";
import type { LiveSource } from "../tiers/hot/hot-log.js";
import { type Delivered, type LiveDelivery, LiveSubscription, type Wake } from "../live/subscription.js";
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

/**
 * The tail as an iterator object rather than an async generator: a followed tail waits for hours
 * between items, and while it waits it holds its fields and one promise, not a suspended
 * generator's frame and the closures around it (10,000 idle tails hold it 10,000 times). It
 * reads as the loop it replaces: history, caught-up, then each wake of the live feed.
 */
export function tail(req: TailRequest, opts: TailOptions, signal: AbortSignal): AsyncIterableIterator<TailItem> {
  return new Tail(req, opts, signal);
}

const done = { done: true, value: undefined } as const;

class Tail implements AsyncIterableIterator<TailItem> {
  private readonly matches: (event: StoredEvent) => boolean;
  private readonly filtered: boolean;
  private subscription: LiveSubscription | undefined;
  /** The last seq scanned. */
  private cursor: number;
  /** Heartbeats count from the last item sent, so a filtered tail that skips every live event still shows it is alive (and how far it scanned). */
  private lastSentAt = 0;
  private started = false;
  private caughtUp = false;
  private ended = false;
  /** Items made and not yet taken. */
  private readonly ready: TailItem[] = [];
  /** A read of storage from the cursor to its current end, while one runs. */
  private pages: AsyncIterator<StoredEvent[]> | undefined;
  /** A wake's events from a gap on, to go through once storage has filled the gap. */
  private rest: { events: StoredEvent[]; from: number } | undefined;

  constructor(
    private readonly req: TailRequest,
    private readonly opts: TailOptions,
    private readonly signal: AbortSignal,
  ) {
    this.matches = eventMatcher(req);
    this.filtered = req.types.length > 0 || req.turnId !== "";
    this.cursor = req.afterSeq;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<TailItem>> {
    const item = this.ready.shift();
    if (item) return Promise.resolve({ done: false, value: item });
    if (this.ended) return Promise.resolve(done);
    if (!this.started) this.start();
    // Closures made per read (a tail idles between reads: it keeps only the one it waits with).
    if (this.pages) return this.readPage().then(() => this.next(), (err: unknown) => this.failed(err));
    if (!this.subscription || this.signal.aborted) {
      this.end();
      return Promise.resolve(done);
    }
    return this.subscription.next(this.lastSentAt, this.signal, this.cursor).then(this.wokeThenNext);
  }

  private readonly wokeThenNext = (wake: Wake & { delivered?: Delivered }) => {
    this.woke(wake);
    return this.next();
  };

  private failed(err: unknown): never {
    this.end();
    throw err;
  }

  async return(): Promise<IteratorResult<TailItem>> {
    const pages = this.pages;
    this.end();
    await pages?.return?.();
    return done;
  }

  async throw(err?: unknown): Promise<IteratorResult<TailItem>> {
    await this.return();
    throw err;
  }

  private start(): void {
    this.started = true;
    // Subscribe before reading history: anything appended meanwhile is buffered, not lost.
    if (this.req.follow) {
      const { live, bufferBound, heartbeatMs, delivery } = this.opts;
      this.subscription = new LiveSubscription(live, this.req.threadId, bufferBound, heartbeatMs, this.filtered ? undefined : delivery);
    }
    this.catchUp();
  }

  /** Reads storage from the cursor to its current end (a page a step). */
  private catchUp(): void {
    this.pages = this.opts.reader.scanPages(this.req.threadId, this.cursor, this.signal)[Symbol.asyncIterator]();
  }

  private async readPage(): Promise<void> {
    const r = await this.pages!.next();
    if (this.ended) return;
    if (r.done) {
      this.pages = undefined;
      this.caughtUpWithStorage();
      return;
    }
    const page = r.value;
    this.cursor = page[page.length - 1].seq;
    const events = this.filtered ? page.filter(this.matches) : page;
    if (events.length > 0) this.send({ kind: "events", events });
  }

  private caughtUpWithStorage(): void {
    if (!this.caughtUp) {
      this.caughtUp = true;
      this.send({ kind: "caught-up", lastSeq: this.cursor });
      if (!this.subscription) this.end();
      return;
    }
    const rest = this.rest;
    this.rest = undefined;
    if (rest) this.takeLive(rest.events, rest.from, true);
    if (!this.pages) this.heartbeatIfDue();
  }

  /** A wake of the live feed: its events, or (after an overflow, or when idle) a read of storage. */
  private woke(wake: Wake & { delivered?: Delivered }): void {
    if (this.ended) return;
    // Written straight to the client meanwhile (direct delivery): the cursor moved on.
    if (wake.delivered) {
      this.cursor = wake.delivered.cursor;
      this.lastSentAt = wake.delivered.at;
    }
    if (this.signal.aborted) return this.end();
    if (wake.kind === "events") this.takeLive(wake.events, 0, false);
    // After an overflow, or when idle (a cheap poll that also covers a missed wake-up).
    else this.catchUp();
    if (!this.pages) this.heartbeatIfDue();
  }

  /** Live events from `from` on; at a gap, what came before it goes out, then storage fills it (and the rest waits in `rest`). */
  private takeLive(events: StoredEvent[], from: number, afterGap: boolean): void {
    let run: StoredEvent[] = [];
    for (let i = from; i < events.length; i++) {
      const event = events[i];
      if (event.seq <= this.cursor) continue;
      // Right after storage filled a gap, the event that found it goes on whatever storage held.
      if (event.seq > this.cursor + 1 && !(afterGap && i === from)) {
        if (run.length > 0) this.send({ kind: "live", events: run });
        this.rest = { events, from: i };
        this.catchUp();
        return;
      }
      this.cursor = event.seq;
      if (this.matches(event)) run.push(event);
    }
    if (run.length > 0) this.send({ kind: "live", events: run.length === events.length ? events : run });
  }

  private heartbeatIfDue(): void {
    if (Date.now() - this.lastSentAt >= this.opts.heartbeatMs) this.send({ kind: "heartbeat", scannedSeq: this.cursor });
  }

  private send(item: TailItem): void {
    if (this.ended) return;
    this.lastSentAt = Date.now();
    this.ready.push(item);
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.pages = undefined;
    this.rest = undefined;
    this.subscription?.close();
  }
}
