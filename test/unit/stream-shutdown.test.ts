// A server's close waits for its ended streams' clean-up (an agent feed
// requeueing turns) before the tiers it writes to are closed.
import { setTimeout as delay } from "node:timers/promises";
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { endingAtShutdown, StreamShutdown } from "../../server/services/shutdown.js";

/** A stream that yields until aborted, then spends `cleanupMs` in its finally (as a feed's requeue does). */
function slowToClean(cleanupMs: number, cleaned: string[]) {
  return async function* (signal: AbortSignal): AsyncGenerator<number> {
    try {
      for (let i = 0; !signal.aborted; i++) {
        yield i;
        await delay(5);
      }
    } finally {
      await delay(cleanupMs);
      cleaned.push("done");
    }
  };
}

test("ended() waits for a stream stopped by the shutdown to finish its clean-up; the stream ends UNAVAILABLE", async (t) => {
  const server = new AbortController();
  const shutdown = new StreamShutdown(server.signal);
  const cleaned: string[] = [];
  const stream = endingAtShutdown(slowToClean(200, cleaned), new AbortController().signal, shutdown, "server shutting down");
  const consumed = (async () => {
    for await (const _ of stream) {
      // consume until the shutdown ends it
    }
  })();
  await delay(20);
  server.abort();
  await shutdown.ended();
  t.deepEqual(cleaned, ["done"], "ended() resolved before the clean-up finished");
  const err = await t.throwsAsync(consumed);
  t.is(ConnectError.from(err).code, Code.Unavailable);
});

test("a stream its caller cancelled counts until its clean-up is done too; with none running, ended() resolves at once", async (t) => {
  const shutdown = new StreamShutdown(new AbortController().signal);
  await shutdown.ended();
  const call = new AbortController();
  const cleaned: string[] = [];
  const stream = endingAtShutdown(slowToClean(100, cleaned), call.signal, shutdown, "server shutting down");
  const first = await stream.next();
  t.false(first.done);
  // The client went away: the server calls return() on the stream.
  const returned = stream.return(undefined);
  const ended = shutdown.ended().then(() => [...cleaned]);
  await returned;
  t.deepEqual(await ended, ["done"]);
});
