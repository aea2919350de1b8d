// A tail of one thread that survives dropped streams, server restarts,
// UNAVAILABLE and DEADLINE_EXCEEDED: it resumes after the last seq it
// delivered (a filtered tail after the last seq the server scanned), with
// backoff and jitter, and yields every seq once, in order.
import { type Client, ConnectError, type Code } from "@connectrpc/connect";
import type { EventService } from "../../../gen/eventide/v1/event_service_pb.js";
import type { Event } from "../../../gen/eventide/v1/resources_pb.js";
import { type Backoff, backoffMs, sleep } from "./retry.js";
import { TailCursor } from "./tail-cursor.js";
import { isTerminal } from "./terminal-codes.js";

export interface TailOptions {
  /** Deliver events after this seq (default 0: from the start). */
  afterSeq?: number | bigint;
  /** Keep following live events after the history (default true); false ends at caught-up. */
  follow?: boolean;
  /** Only event types starting with one of these prefixes. */
  types?: string[];
  /** Only this turn's events. */
  turnId?: string;
  /** Events per response while reading history (default 100; 0 = one per response). */
  batch?: number;
  /** Ends the tail cleanly (the iteration returns). */
  signal?: AbortSignal;
  /** With no message at all (not even a heartbeat) for this long, the stream is presumed dead (default 45 s). */
  idleTimeoutMs?: number;
  backoff?: Backoff;
  /** The history is delivered; what follows is live (again after each reconnect). */
  onCaughtUp?(lastSeq: number): void;
  onHeartbeat?(scannedSeq: number): void;
  /** The stream dropped (or a gap was seen); the tail reconnects after `delayMs`. */
  onReconnect?(info: ReconnectInfo): void;
  /** A seq at or below the last delivered one arrived again and was dropped. */
  onDuplicate?(seq: number): void;
  /** A seq arrived that is not the next one: the tail re-reads from its position. */
  onGap?(expected: number, got: number): void;
}

export interface ReconnectInfo {
  /** Consecutive failed connections, from 1. */
  failures: number;
  /** Where the tail resumes: events after this seq. */
  afterSeq: number;
  reason: string;
  code?: Code;
  delayMs: number;
}

export interface TailState {
  /** Every seq up to this one is delivered (filtered: scanned). */
  position: number;
  /** The seq of the last event yielded (0: none yet). */
  lastSeq: number;
  /** The current stream has delivered the history: what comes now is live. */
  caughtUp: boolean;
  reconnects: number;
  duplicates: number;
  gaps: number;
  /** Date.now() of the last heartbeat. */
  lastHeartbeatAt?: number;
}

export interface Tail extends AsyncIterable<Event> {
  readonly state: Readonly<TailState>;
}

export function tailThread(events: Client<typeof EventService>, threadId: string, options: TailOptions = {}): Tail {
  const filtered = (options.types?.length ?? 0) > 0 || !!options.turnId;
  const cursor = new TailCursor(Number(options.afterSeq ?? 0), filtered);
  const state: TailState = { position: cursor.position, lastSeq: 0, caughtUp: false, reconnects: 0, duplicates: 0, gaps: 0 };
  const follow = options.follow ?? true;
  const idleTimeoutMs = options.idleTimeoutMs ?? 45_000;
  const signal = options.signal;

  async function* run(): AsyncGenerator<Event> {
    for (let failures = 0; !signal?.aborted; ) {
      const attempt = new AbortController();
      const stop = () => attempt.abort();
      signal?.addEventListener("abort", stop, { once: true });
      let idle = false;
      let timer = setTimeout(() => ((idle = true), stop()), idleTimeoutMs);
      let progressed = false;
      let gap: string | undefined;
      let reason = "the stream ended";
      let code: Code | undefined;
      try {
        const stream = events.tailEvents(
          { threadId, afterSeq: BigInt(cursor.position), follow, types: options.types, turnId: options.turnId, maxEventsPerResponse: options.batch ?? 100 },
          { signal: attempt.signal },
        );
        read: for await (const res of stream) {
          clearTimeout(timer);
          timer = setTimeout(() => ((idle = true), stop()), idleTimeoutMs);
          const item = res.item;
          if (item.case === "event" || item.case === "events") {
            for (const event of item.case === "event" ? [item.value] : item.value.events) {
              const seq = Number(event.seq);
              const verdict = cursor.accept(seq);
              if (verdict === "duplicate") {
                state.duplicates++;
                options.onDuplicate?.(seq);
                continue;
              }
              if (verdict === "gap") {
                gap = `expected seq ${cursor.position + 1}, got ${seq}`;
                options.onGap?.(cursor.position + 1, seq);
                break read;
              }
              progressed = true;
              state.position = cursor.position;
              state.lastSeq = seq;
              yield event;
              if (signal?.aborted) return;
            }
          } else if (item.case === "caughtUp" || item.case === "heartbeat") {
            const scanned = Number(item.case === "caughtUp" ? item.value.lastSeq : item.value.scannedSeq);
            if (cursor.scanned(scanned) === "gap") {
              gap = `the server scanned through seq ${scanned}, the tail has ${cursor.position}`;
              options.onGap?.(cursor.position + 1, scanned);
              break read;
            }
            progressed = true;
            state.position = cursor.position;
            if (item.case === "caughtUp") {
              state.caughtUp = true;
              options.onCaughtUp?.(scanned);
              if (!follow) return;
            } else {
              state.lastHeartbeatAt = Date.now();
              options.onHeartbeat?.(scanned);
            }
          }
        }
      } catch (err) {
        if (signal?.aborted) return;
        if (!idle && isTerminal(err)) throw ConnectError.from(err);
        const e = ConnectError.from(err);
        reason = idle ? `no message for ${idleTimeoutMs} ms` : e.message;
        code = idle ? undefined : e.code;
      } finally {
        clearTimeout(timer);
        signal?.removeEventListener("abort", stop);
        attempt.abort(); // a break out of for-await does not cancel the call
      }
      if (signal?.aborted) return;
      if (gap) {
        state.gaps++;
        reason = `gap: ${gap}`;
      }
      if (progressed) failures = 0;
      failures++;
      // A first gap is re-read at once; repeated ones back off like failures.
      const delayMs = gap && failures === 1 ? 0 : backoffMs(failures, options.backoff);
      state.caughtUp = false;
      state.reconnects++;
      options.onReconnect?.({ failures, afterSeq: cursor.position, reason, code, delayMs });
      await sleep(delayMs, signal);
    }
  }

  return {
    state,
    [Symbol.asyncIterator]: () => run(),
  };
}
