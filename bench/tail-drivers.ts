// The two clients of the tail scenario, behind one face: Connect's (tails
// and appends through its generated client, as a typical application) and
// the lean wire one (raw node:http2 tails that read each event's seq and
// send time in place, and appends encoded once with the send time written
// into the bytes), so the scenario's figures are the server's.
import { Connections } from "./connections.js";
import { benchEventType } from "./payloads.js";
import { stampedAppendFrame, wireAppend } from "./wire-append-client.js";
import { WireSessions } from "./wire-sessions.js";
import { eventSeq, payloadNumber, wireTail } from "./wire-tail-client.js";
import { nowMs } from "./clock.js";

/** What one tail reports. */
export interface TailEvents {
  /** An event: its seq, and its payload's send time (NaN for an event that has none, e.g. thread.created). */
  event(seq: number, sentAt: number, receivedAt: number): void;
  caughtUp(): void;
  /** The call is over; `problem` unless it was cancelled here. */
  ended(problem: string | undefined): void;
}

export interface TailDriver {
  /** The client's name, for the rows. */
  readonly client: string;
  /** Follows `threadId` from seq 0 on tail connection `i`; returns the call's cancel. */
  follow(i: number, threadId: string, on: TailEvents): () => void;
  /** Appends one event stamped with its send time to `threadId` on append connection `k`. */
  append(k: number, threadId: string): Promise<void>;
  readonly setup: Connections;
  errors(): string[];
  close(): void;
}

export function connectTailDriver(baseUrl: string, tailConnections: number, appendConnections: number): TailDriver {
  const tails = new Connections(baseUrl, tailConnections);
  const appends = new Connections(baseUrl, appendConnections);
  return {
    client: "Connect client",
    setup: appends,
    follow(i, threadId, on) {
      // One controller per call: a shared signal would collect a thousand abort listeners.
      const cancel = new AbortController();
      void (async () => {
        try {
          const stream = tails.events(i).tailEvents({ threadId, afterSeq: 0n, follow: true }, { signal: cancel.signal });
          for await (const res of stream) {
            const receivedAt = nowMs();
            if (res.item.case === "caughtUp") on.caughtUp();
            if (res.item.case !== "event") continue;
            const event = res.item.value;
            on.event(Number(event.seq), event.type === benchEventType ? Number(event.payload?.sentAt) : Number.NaN, receivedAt);
          }
          on.ended(cancel.signal.aborted ? undefined : "stream ended before the benchmark did");
        } catch (err) {
          on.ended(cancel.signal.aborted ? undefined : `stream failed: ${String(err)}`);
        }
      })();
      // `break` would not cancel the call, the signal does.
      return () => cancel.abort();
    },
    async append(k, threadId) {
      await appends.events(k).appendEvents({ threadId, events: [{ type: benchEventType, payload: { sentAt: nowMs() } }] });
    },
    errors: () => [],
    close() {
      tails.close();
      appends.close();
    },
  };
}

export function wireTailDriver(baseUrl: string, tailConnections: number, appendConnections: number): TailDriver {
  const tails = new WireSessions(baseUrl, tailConnections);
  const appends = new WireSessions(baseUrl, appendConnections);
  const setup = new Connections(baseUrl, 1);
  const frames = new Map<string, (sentAt: number) => Buffer>();
  return {
    client: "wire client",
    setup,
    follow(i, threadId, on) {
      let cancelled = false;
      const cancel = wireTail(tails.session(i), { threadId, follow: true }, {
        event: (buf, from, end) => on.event(eventSeq(buf, from, end), payloadNumber(buf, from, end), nowMs()),
        caughtUp: () => on.caughtUp(),
        ended: (problem) => on.ended(cancelled ? undefined : (problem ?? "stream ended before the benchmark did")),
      });
      return () => {
        cancelled = true;
        cancel();
      };
    },
    async append(k, threadId) {
      let stamp = frames.get(threadId);
      if (!stamp) frames.set(threadId, (stamp = stampedAppendFrame(threadId)));
      await wireAppend(appends, k, stamp(nowMs()));
    },
    errors: () => [...tails.errors, ...appends.errors],
    close() {
      tails.close();
      appends.close();
      setup.close();
    },
  };
}
