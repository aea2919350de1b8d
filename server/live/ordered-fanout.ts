// The fan-out of a hot tier with two feeds of a thread's events: this
// process's own appends, delivered as soon as they return, and the partition
// log reader, which also carries other servers' appends. Each seq reaches the
// thread's tails once and in order: a feed delivers only what follows on from
// the last seq delivered to the thread.
import type { StoredEvent } from "../domain/records.js";
import { ThreadFanout } from "./fanout.js";

export class OrderedFanout extends ThreadFanout {
  /** The last seq delivered, per thread with subscribers; absent: not known yet (only the reader delivers). */
  private readonly delivered = new Map<string, number>();
  /** This process's appends in flight, per thread with subscribers (see appending). */
  private readonly inFlight = new Map<string, Set<Promise<unknown>>>();

  override subscribe(threadId: string, onEvents: Parameters<ThreadFanout["subscribe"]>[1]): () => void {
    const unsubscribe = super.subscribe(threadId, onEvents);
    return () => {
      unsubscribe();
      if (!this.hasSubscribers(threadId)) this.delivered.delete(threadId);
    };
  }

  /** The last seq delivered to the thread's tails; undefined when not known. */
  deliveredTo(threadId: string): number | undefined {
    return this.delivered.get(threadId);
  }

  /**
   * This process's append (contiguous, in seq order): delivered now when it follows on from the
   * last delivered seq; otherwise (an append not seen yet lies between, or nothing is known) the
   * reader delivers it when it reads the partition log.
   */
  publishAppended(threadId: string, events: StoredEvent[]): void {
    const last = this.delivered.get(threadId);
    if (last === undefined || events.length === 0 || events[0].seq !== last + 1) return;
    this.delivered.set(threadId, events[events.length - 1].seq);
    this.publish(threadId, events);
  }

  /**
   * An append of this process to the thread, in flight until `done` settles (it has then delivered
   * what it could). The reader waits for these rather than reading back from storage the events
   * they are about to deliver: on one server, every append it sees would otherwise race its own.
   */
  appending(threadId: string, done: Promise<unknown>): void {
    if (!this.hasSubscribers(threadId)) return;
    let set = this.inFlight.get(threadId);
    if (!set) this.inFlight.set(threadId, (set = new Set()));
    set.add(done);
    const settled = () => this.appended(threadId, set, done);
    done.then(settled, settled);
  }

  private appended(threadId: string, set: Set<Promise<unknown>>, done: Promise<unknown>): void {
    set.delete(done);
    if (set.size === 0 && this.inFlight.get(threadId) === set) this.inFlight.delete(threadId);
  }

  /** Settles once the thread's appends in flight now are over; undefined when there are none. */
  appendsInFlight(threadId: string): Promise<unknown> | undefined {
    const set = this.inFlight.get(threadId);
    return set && Promise.allSettled(set);
  }

  /** The reader's events (in seq order): those past the last delivered seq are delivered. */
  publishRead(threadId: string, events: StoredEvent[]): void {
    if (!this.hasSubscribers(threadId)) return;
    const last = this.delivered.get(threadId);
    const fresh = last === undefined ? events : events.filter((e) => e.seq > last);
    if (fresh.length === 0) return;
    this.delivered.set(threadId, fresh[fresh.length - 1].seq);
    this.publish(threadId, fresh);
  }

  /** Some events were missed: the tails read them from storage, and only the reader delivers until it knows more. */
  resync(threadId: string): void {
    this.delivered.delete(threadId);
    this.publish(threadId, "resync");
  }
}
