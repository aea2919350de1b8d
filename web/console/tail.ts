// A followed tail of one thread that survives dropped streams: it resumes
// after the last seq it delivered, with backoff, and checks the server's
// promise of strictly increasing seqs with no gap and no duplicate.
import { Code, ConnectError } from "@connectrpc/connect";
import type { Event } from "../../gen/eventide/v1/resources_pb.js";
import { askForKey, events, isUnauthenticated, keyRefusal } from "./api.js";
import { sleep } from "../../server/domain/wait.js";

export type TailStatus = "connecting" | "live" | "reconnecting" | "needs-key" | "failed";

export interface TailView {
  event(event: Event): void;
  status(status: TailStatus, lastSeq: number, detail?: string): void;
  /** A seq arrived that is not the last one + 1 (the event is shown anyway). */
  gap(expected: number, got: number): void;
  /** A seq at or below the last one arrived again and was dropped. */
  duplicate(seq: number): void;
}

/** A long history comes in batches: far fewer messages for the browser to parse and the server to send. */
const eventsPerResponse = 200;

/** With no message at all (not even a heartbeat) for this long, the stream is presumed dead. */
const silenceMs = 45_000;

export async function followThread(threadId: string, view: TailView, signal: AbortSignal): Promise<void> {
  let lastSeq = 0;
  let failures = 0;
  view.status("connecting", lastSeq);
  while (!signal.aborted) {
    const attempt = new AbortController();
    const stop = () => attempt.abort();
    signal.addEventListener("abort", stop, { once: true });
    let silence = setTimeout(stop, silenceMs);
    let detail = "the stream ended";
    try {
      const stream = events.tailEvents(
        { threadId, afterSeq: BigInt(lastSeq), follow: true, maxEventsPerResponse: eventsPerResponse },
        { signal: attempt.signal },
      );
      for await (const res of stream) {
        if (signal.aborted) break; // the page moved on: nothing more goes to its view
        clearTimeout(silence);
        silence = setTimeout(stop, silenceMs);
        failures = 0;
        const delivered = res.item.case === "events" ? res.item.value.events : res.item.case === "event" ? [res.item.value] : [];
        for (const event of delivered) {
          const seq = Number(event.seq);
          if (seq <= lastSeq) {
            view.duplicate(seq);
            continue;
          }
          if (seq !== lastSeq + 1) view.gap(lastSeq + 1, seq);
          lastSeq = seq;
          view.event(event);
        }
        if (res.item.case === "caughtUp") {
          view.status("live", lastSeq);
        }
      }
    } catch (err) {
      if (signal.aborted) break;
      if (isUnauthenticated(err)) {
        view.status("needs-key", lastSeq);
        await askForKey(keyRefusal());
        view.status("connecting", lastSeq);
        continue;
      }
      const e = ConnectError.from(err);
      // Retrying cannot help these: the thread is unknown, or the key may not read it.
      if (e.code === Code.NotFound || e.code === Code.PermissionDenied || e.code === Code.InvalidArgument) {
        view.status("failed", lastSeq, e.rawMessage);
        return;
      }
      detail = attempt.signal.aborted ? `no message for ${silenceMs / 1000} s` : e.rawMessage;
    } finally {
      clearTimeout(silence);
      signal.removeEventListener("abort", stop);
    }
    if (signal.aborted) break;
    failures++;
    view.status("reconnecting", lastSeq, detail);
    await sleep(backoffMs(failures), signal);
  }
}

/** 250 ms doubling to 4 s, with jitter so a restarted server is not hit by every page at once. */
function backoffMs(failures: number): number {
  const base = Math.min(4_000, 250 * 2 ** (failures - 1));
  return base / 2 + Math.random() * (base / 2);
}
