// In-process fan-out: one feed of appended events reaches every local
// subscriber of a thread, so tailers cost memory, never connections.
import type { StoredEvent } from "../domain/records.js";
import type { LiveSource } from "../tiers/hot/hot-log.js";

/** Events in seq order, or "resync": some were missed, read them from storage. */
export type LiveUpdate = StoredEvent[] | "resync";
type Listener = (update: LiveUpdate) => void;

export class ThreadFanout implements LiveSource {
  private readonly listeners = new Map<string, Set<Listener>>();

  subscribe(threadId: string, onEvents: Listener): () => void {
    let set = this.listeners.get(threadId);
    if (!set) this.listeners.set(threadId, (set = new Set()));
    set.add(onEvents);
    return () => {
      set.delete(onEvents);
      if (set.size === 0 && this.listeners.get(threadId) === set) this.listeners.delete(threadId);
    };
  }

  hasSubscribers(threadId: string): boolean {
    return this.listeners.has(threadId);
  }

  publish(threadId: string, update: LiveUpdate): void {
    const set = this.listeners.get(threadId);
    if (!set || update.length === 0) return;
    for (const listener of set) listener(update);
  }

  subscribersOf(threadId: string): number {
    return this.listeners.get(threadId)?.size ?? 0;
  }

  get subscriberCount(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}
