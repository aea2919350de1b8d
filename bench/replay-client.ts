// One TailEvents from seq 0 with follow=false, over gRPC, read to caught_up:
// how fast a server delivers a thread's history, and whether it is whole.
import { Connections } from "./connections.js";
import { nowMs } from "./clock.js";

export interface Replayed {
  events: number;
  /** From the call to caught_up. */
  seconds: number;
  firstEventMs: number;
  /** For MB/s: the size of the events' payloads (Connect client) or of the encoded events (wire client). */
  bytes: number;
  /** What `bytes` measures, for the row's name. */
  bytesLabel: string;
  problems: string[];
}

/** A replay reader: TailEvents from seq 0, follow=false, read to caught_up, asking for `perResponse` events a response (0: one). */
export type ReplayClient = (baseUrl: string, threadId: string, lastSeq: number, timeoutMs: number, perResponse: number) => Promise<Replayed>;

export async function replayFromStart(baseUrl: string, threadId: string, lastSeq: number, timeoutMs: number, perResponse: number): Promise<Replayed> {
  const conns = new Connections(baseUrl, 1);
  const cancel = new AbortController();
  const timer = setTimeout(() => cancel.abort(), timeoutMs);
  const problems: string[] = [];
  let [events, expected, payloadBytes, firstEventMs] = [0, 1, 0, Number.NaN];
  let caughtUp: bigint | undefined;
  const started = nowMs();
  let ended = started;
  try {
    const stream = conns.events(0).tailEvents({ threadId, afterSeq: 0n, follow: false, maxEventsPerResponse: perResponse }, { signal: cancel.signal });
    for await (const res of stream) {
      if (res.item.case === "caughtUp") {
        caughtUp = res.item.value.lastSeq;
        ended = nowMs();
        break;
      }
      const delivered = res.item.case === "event" ? [res.item.value] : res.item.case === "events" ? res.item.value.events : [];
      for (const event of delivered) {
        if (events === 0) firstEventMs = nowMs() - started;
        const seq = Number(event.seq);
        if (seq !== expected && problems.length < 3) problems.push(`seq ${seq} where ${expected} was due`);
        expected = seq + 1;
        events++;
        // Only to size the stream: the payload is one short string field.
        const delta = event.payload?.delta;
        payloadBytes += typeof delta === "string" ? delta.length + 12 : 0;
      }
    }
  } catch (err) {
    ended = nowMs();
    problems.push(cancel.signal.aborted ? `no caught_up within ${timeoutMs} ms (${events} events by then)` : `stream failed: ${String(err)}`);
  } finally {
    clearTimeout(timer);
    cancel.abort();
    conns.close();
  }
  if (caughtUp === undefined && problems.length === 0) problems.push(`stream ended without caught_up after ${events} events`);
  if (caughtUp !== undefined && Number(caughtUp) !== lastSeq) problems.push(`caught_up at ${caughtUp}, the thread ends at ${lastSeq}`);
  if (events !== lastSeq && caughtUp !== undefined) problems.push(`${events} events for seqs 1-${lastSeq}`);
  return { events, seconds: (ended - started) / 1000, firstEventMs, bytes: payloadBytes, bytesLabel: "payload", problems };
}
