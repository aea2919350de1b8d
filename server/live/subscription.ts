// One tailer's place in its thread's live feed. Two ways to take live events:
// - buffered: a bounded buffer the tail's generator drains; a slow reader
//   never holds up the fan-out: past the bound the buffer is dropped and the
//   reader is told to catch up from storage instead;
// - direct (a tail with a LiveDelivery, while it is caught up and its buffer
//   is empty): the events that arrived together are written to the client as
//   bytes framed once for every tailer of the thread, in the publisher's call,
//   with no wake-up of the tail's generator. A client that is not keeping up
//   (or a gap, or bytes that are not the client's) hands the tail back to its
//   generator, which catches up from storage: no gap, no duplicate.
// Idle wake-ups (heartbeats) come from one shared timer wheel, not a timer per tail; a tail in
// direct mode whose thread holds nothing new gets its heartbeat as bytes, without waking at all.
import type { StoredEvent } from "../domain/records.js";
import type { FanoutDropReason } from "../observability/metrics.js";
import type { LiveSource } from "../tiers/hot/hot-log.js";
import type { LiveWriter } from "./live-writer.js";
import { TimerWheel, type WheelEntry } from "./timer-wheel.js";

/** A live source that wants to know when a tailer's buffered events were dropped (metrics). */
export interface CountedLiveSource extends LiveSource {
  dropped?(reason: FanoutDropReason): void;
}

/** A tail's direct delivery: its writer, and the framing of events that arrived together (shared by the thread's tails). */
export interface LiveDelivery {
  writer: LiveWriter;
  /** The responses for `events` (contiguous, in seq order), framed; the same array gives the same Buffer. */
  frames(events: StoredEvent[]): { bytes: Buffer; responses: number };
  /**
   * A heartbeat framed, when the thread holds nothing after `cursor` (asked when the tail has been
   * idle for its interval); undefined when the tail must catch up from storage (or end) instead.
   */
  idle?(threadId: string, cursor: number): Promise<Buffer | undefined>;
}

export type Wake =
  | { kind: "events"; events: StoredEvent[] }
  | { kind: "overflow" }
  | { kind: "idle" };

/** What a direct delivery wrote while the tail waited: its new cursor and when it last wrote. */
export interface Delivered {
  cursor: number;
  at: number;
}

export class LiveSubscription implements WheelEntry {
  private buffered: StoredEvent[] = [];
  private overflowed = false;
  private resolveWait: ((wake: Wake & { delivered?: Delivered }) => void) | undefined;
  private signal: AbortSignal | undefined;
  private dueAt = 0;
  /** Set while the tail waits in direct mode. */
  private directCursor = -1;
  /** What direct writes reached during the current wait (-1: none) and when they last wrote. */
  private writtenTo = -1;
  private writtenAt = 0;
  /** Counts the waits, so an idle check that outlived its wait does nothing. */
  private waits = 0;
  private readonly unsubscribe: () => void;
  private readonly wheel: TimerWheel;
  wheelSlot?: number;

  constructor(
    private readonly source: CountedLiveSource,
    private readonly threadId: string,
    private readonly bound: number,
    /** Silence after which the tail wakes (for a heartbeat and a storage poll). */
    private readonly idleMs: number,
    private readonly delivery?: LiveDelivery,
  ) {
    this.wheel = wheelFor(idleMs);
    this.unsubscribe = source.subscribe(threadId, (update) => this.push(update));
  }

  private push(update: StoredEvent[] | "resync"): void {
    if (this.overflowed) return;
    if (this.directCursor >= 0 && update !== "resync") {
      if (this.writeDirect(update)) return;
      this.source.dropped?.("buffer");
      this.overflow();
      return;
    }
    if (update === "resync" || this.buffered.length + update.length > this.bound) {
      this.source.dropped?.(update === "resync" ? "resync" : "buffer");
      this.overflow();
    } else {
      for (const e of update) this.buffered.push(e);
      this.wakeUp();
    }
  }

  private overflow(): void {
    this.buffered = [];
    this.overflowed = true;
    this.wakeUp();
  }

  /** Writes the events after the cursor straight to the client; false when they must come from storage instead. */
  private writeDirect(events: StoredEvent[]): boolean {
    const cursor = this.directCursor;
    const first = events[0].seq;
    const last = events[events.length - 1].seq;
    if (last <= cursor) return true;
    // Only a contiguous run that follows on from the cursor, and no more at once than a tail
    // buffers (the bound means the same on both ways); anything else is read back from storage.
    if (first > cursor + 1 || last - first !== events.length - 1 || last - cursor > this.bound) return false;
    const part = first === cursor + 1 ? events : events.slice(cursor + 1 - first);
    const { bytes, responses } = this.delivery!.frames(part);
    if (!this.delivery!.writer.write(bytes)) return false;
    this.delivery!.writer.written += responses;
    this.directCursor = last;
    this.writtenTo = last;
    this.writtenAt = Date.now();
    return true;
  }

  /**
   * Waits for live events, an overflow, `idleMs` of silence since `lastSentAt`, or the signal.
   * With a delivery and the tail's cursor, live events meanwhile go straight to the client
   * (what was written is in `delivered`), and the silence counts from the last of them.
   * Not an async function: a tail idles here for hours, and this holds a promise while it does,
   * not a suspended frame.
   */
  next(lastSentAt: number, signal: AbortSignal, cursor?: number): Promise<Wake & { delivered?: Delivered }> {
    this.writtenTo = -1;
    if (this.overflowed || this.buffered.length > 0 || signal.aborted) return Promise.resolve(this.take());
    if (this.delivery && cursor !== undefined) this.directCursor = cursor;
    this.dueAt = lastSentAt + this.idleMs;
    this.waits++;
    return new Promise((resolve) => {
      this.resolveWait = resolve;
      this.signal = signal;
      signal.addEventListener("abort", this, { once: true });
      this.wheel.schedule(this, this.dueAt);
    });
  }

  /** What the wait ended with, and what direct writes delivered during it. */
  private take(): Wake & { delivered?: Delivered } {
    this.directCursor = -1;
    const delivered = this.writtenTo < 0 ? undefined : { cursor: this.writtenTo, at: this.writtenAt };
    this.writtenTo = -1;
    if (this.overflowed) {
      this.overflowed = false;
      this.buffered = [];
      return { kind: "overflow", delivered };
    }
    if (this.buffered.length === 0) return { kind: "idle", delivered };
    const events = this.buffered;
    this.buffered = [];
    return { kind: "events", events, delivered };
  }

  /** The wheel's call: idle for long enough, unless direct writes moved the silence on. */
  fire(): void {
    const due = this.writtenTo < 0 ? this.dueAt : Math.max(this.dueAt, this.writtenAt + this.idleMs);
    if (due > Date.now() && this.resolveWait) this.wheel.schedule(this, due);
    else if (this.directCursor >= 0 && this.delivery?.idle) void this.heartbeatDirect(this.directCursor);
    else this.wakeUp();
  }

  /**
   * Idle in direct mode: when the thread holds nothing after the cursor, the heartbeat goes out as
   * bytes and the tail waits on, its handler never woken (an idle tail then costs a read of its
   * thread, shared with the thread's other tails, and a write); otherwise it wakes and catches up
   * from storage, which also covers a live notification that never came.
   */
  private async heartbeatDirect(cursor: number): Promise<void> {
    const wait = this.waits;
    const frame = await this.delivery!.idle!(this.threadId, cursor).catch(() => undefined);
    if (!this.resolveWait || wait !== this.waits) return; // woken meanwhile: live events, an overflow, the call's end
    if (this.directCursor !== cursor) {
      // Live events went out meanwhile: the silence counts from them.
      this.wheel.schedule(this, this.writtenAt + this.idleMs);
      return;
    }
    if (frame === undefined || !this.delivery!.writer.write(frame)) return this.wakeUp();
    this.delivery!.writer.written += 1;
    this.writtenTo = cursor;
    this.writtenAt = Date.now();
    this.wheel.schedule(this, this.writtenAt + this.idleMs);
  }

  /** The signal's abort (the subscription itself listens: Node still wraps a listener object in a function of its own). */
  handleEvent(): void {
    this.wakeUp();
  }

  /** Ends the wait with what it ended with: whatever comes after goes to the buffer, for the next wait. */
  private wakeUp(): void {
    const resolve = this.resolveWait;
    if (!resolve) return;
    this.resolveWait = undefined;
    this.wheel.cancel(this);
    this.signal?.removeEventListener("abort", this);
    this.signal = undefined;
    resolve(this.take());
  }

  close(): void {
    this.unsubscribe();
    this.wakeUp();
  }
}

const wheels = new Map<number, TimerWheel>();

/** The process's wheel for this idle interval: heartbeats come at most ~3 % late. */
function wheelFor(idleMs: number): TimerWheel {
  const resolution = Math.min(500, Math.max(5, Math.floor(idleMs / 32)));
  let wheel = wheels.get(resolution);
  if (!wheel) wheels.set(resolution, (wheel = new TimerWheel(resolution)));
  return wheel;
}
