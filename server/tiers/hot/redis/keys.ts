// Every key of a partition carries the hash tag {p}, so one script touches a
// thread's keys and its partition log in one Cluster slot.
import { createHash } from "node:crypto";
import { partitionOf } from "../partition.js";

export class HotKeys {
  constructor(readonly prefix: string, readonly partitions: number) {}

  partition(threadId: string): number {
    return partitionOf(threadId, this.partitions);
  }

  private base(threadId: string): string {
    return `${this.prefix}:{${this.partition(threadId)}}`;
  }

  /** The thread's stream; entry id `<seq>-0`. */
  stream(threadId: string): string {
    return `${this.base(threadId)}:t:${threadId}`;
  }

  /** Hash: tenant, last_seq, status, metadata, created_at, updated_at, open_turns. */
  meta(threadId: string): string {
    return `${this.base(threadId)}:t:${threadId}:meta`;
  }

  /** Hash: turn_id → turn JSON. */
  turns(threadId: string): string {
    return `${this.base(threadId)}:t:${threadId}:turns`;
  }

  /** Hash: "<turn_id>:status|attempt|agent|error|output|started|ended|updated" → the turn's dispatch state. */
  turnState(threadId: string): string {
    return `${this.base(threadId)}:t:${threadId}:ts`;
  }

  /** List: the thread's queued turn ids, in the order they run. */
  turnQueue(threadId: string): string {
    return `${this.base(threadId)}:t:${threadId}:q`;
  }

  /** Sorted set: thread ids whose next turn may start, scored by when (ms). */
  readyThreads(p: number): string {
    return `${this.prefix}:{${p}}:ready`;
  }

  /** Sorted set: lease ids of running turns, scored by expiry (ms). */
  leases(p: number): string {
    return `${this.prefix}:{${p}}:leases`;
  }

  /**
   * Sharded pub/sub channel of the partition's dispatch notices ("ready <thread>",
   * "ended <turn> <lease> <1 if cancelled>"), in the partition's slot so its scripts may SPUBLISH.
   */
  dispatchChannel(p: number): string {
    return `${this.prefix}:{${p}}:dispatch`;
  }

  /** The partition log the persister and the live readers follow. */
  partitionLog(p: number): string {
    return `${this.prefix}:{${p}}:log`;
  }

  /**
   * Hash: "<tenant>\0<event_id>" (eventIdKey) → "<thread_id> <seq>", for retries and GetEvent.
   * Fields written before ids were per tenant (a bare event_id) are never looked up again;
   * trimming and deletion still remove them.
   */
  eventIndex(p: number): string {
    return `${this.prefix}:{${p}}:eid`;
  }

  /** Hash: turn_id → "<thread_id> <tenant>" (a bare thread_id if written before tenants were indexed), for GetTurn. */
  turnIndex(p: number): string {
    return `${this.prefix}:{${p}}:turn`;
  }

  /**
   * String with a TTL: a SubmitTurn idempotency key → "<thread_id> <turn_id>".
   * In the thread's partition; a new thread's id is chosen to share the scope's.
   */
  idempotency(threadId: string, scope: string): string {
    const digest = createHash("sha256").update(scope).digest("hex").slice(0, 40);
    return `${this.base(threadId)}:idem:${digest}`;
  }
}
