// One tailer's bounded buffer of live events. A slow reader never holds up the
// fan-out: past the bound the buffer is dropped and the reader is told to
// catch up from storage instead.
import type { StoredEvent } from "../domain/records.js";
import { waitFor } from "../domain/wait.js";
import type { FanoutDropReason } from "../observability/metrics.js";
import type { LiveSource } from "../tiers/hot/hot-log.js";

/** A live source that wants to know when a tailer's buffered events were dropped (metrics). */
export interface CountedLiveSource extends LiveSource {
  dropped?(reason: FanoutDropReason): void;
}

export type Wake =
  | { kind: "events"; events: StoredEvent[] }
  | { kind: "overflow" }
  | { kind: "idle" };

export class LiveSubscription {
  private buffered: StoredEvent[] = [];
  private overflowed = false;
  private wake?: () => void;
  private readonly unsubscribe: () => void;

  constructor(private readonly source: CountedLiveSource, threadId: string, private readonly bound: number) {
    this.unsubscribe = source.subscribe(threadId, (update) => this.push(update));
  }

  private push(events: StoredEvent[] | "resync"): void {
    if (this.overflowed) return;
    if (events === "resync" || this.buffered.length + events.length > this.bound) {
      this.source.dropped?.(events === "resync" ? "resync" : "buffer");
      this.buffered = [];
      this.overflowed = true;
    } else {
      for (const e of events) this.buffered.push(e);
    }
    this.wake?.();
  }

  /** Waits for live events, an overflow, `idleMs` of silence, or the signal. */
  async next(idleMs: number, signal: AbortSignal): Promise<Wake> {
    if (!this.overflowed && this.buffered.length === 0) {
      const wait = waitFor(idleMs, signal);
      this.wake = wait.wake;
      await wait.done;
      this.wake = undefined;
    }
    if (this.overflowed) {
      this.overflowed = false;
      this.buffered = [];
      return { kind: "overflow" };
    }
    if (this.buffered.length === 0) return { kind: "idle" };
    const events = this.buffered;
    this.buffered = [];
    return { kind: "events", events };
  }

  close(): void {
    this.unsubscribe();
    this.wake?.();
  }
}
