// A followed tail of one thread for the page, on @eventide/client's tail:
// the client resumes after the last seq it delivered, with backoff, and checks
// the server's promise of strictly increasing seqs with no gap and no
// duplicate. This file maps what it reports onto the page's status.
import type { Event } from "../../gen/eventide/v1/resources_pb.js";
import { isTerminal } from "../../clients/typescript/src/web.js";
import { ConnectError } from "@connectrpc/connect";
import { askForKey, client, isUnauthenticated, keyRefusal } from "./api.js";

export type TailStatus = "connecting" | "live" | "reconnecting" | "needs-key" | "failed";

export interface TailView {
  event(event: Event): void;
  status(status: TailStatus, lastSeq: number, detail?: string): void;
  /** A seq arrived that is not the last one + 1 (the tail re-reads from the last one). */
  gap(expected: number, got: number): void;
  /** A seq at or below the last one arrived again and was dropped. */
  duplicate(seq: number): void;
}

/** A long history comes in batches: far fewer messages for the browser to parse and the server to send. */
const eventsPerResponse = 200;

export async function followThread(threadId: string, view: TailView, signal: AbortSignal): Promise<void> {
  let lastSeq = 0;
  view.status("connecting", lastSeq);
  // The client ends a tail on errors no retry cures; a missing key is one the user can cure.
  while (!signal.aborted) {
    const tail = client.tail(threadId, {
      afterSeq: lastSeq,
      batch: eventsPerResponse,
      signal,
      onCaughtUp: () => view.status("live", lastSeq),
      onReconnect: ({ reason }) => view.status("reconnecting", lastSeq, reason),
      onGap: (expected, got) => view.gap(expected, got),
      onDuplicate: (seq) => view.duplicate(seq),
    });
    try {
      for await (const event of tail) {
        lastSeq = Number(event.seq);
        view.event(event);
      }
      return; // aborted: the page moved on
    } catch (err) {
      if (signal.aborted) return;
      if (isUnauthenticated(err)) {
        view.status("needs-key", lastSeq);
        await askForKey(keyRefusal());
        view.status("connecting", lastSeq);
        continue;
      }
      // The thread is unknown, or the key may not read it, or the request is bad.
      view.status("failed", lastSeq, isTerminal(err) ? ConnectError.from(err).rawMessage : String(err));
      return;
    }
  }
}
