// Long server streams end when their server shuts down, with UNAVAILABLE
// rather than a silent end: the client resumes on another server (a tail from
// its last seq, an agent with a new feed).
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Runs `open` on a signal that aborts when the call ends or the server shuts
 * down. The stream finishes first (its `finally` blocks run), then a stream
 * that the shutdown stopped ends with UNAVAILABLE and `message`.
 */
export async function* endingAtShutdown<T>(
  open: (signal: AbortSignal) => AsyncIterable<T>,
  call: AbortSignal,
  shutdown: AbortSignal | undefined,
  message: string,
): AsyncGenerator<T> {
  if (!shutdown) return yield* open(call);
  const stoppedByShutdown = () => shutdown.aborted && !call.aborted;
  try {
    yield* open(AbortSignal.any([call, shutdown]));
  } catch (err) {
    // Whatever the abort interrupted (a storage read) is not the caller's error.
    if (!stoppedByShutdown()) throw err;
  }
  if (stoppedByShutdown()) throw new ConnectError(message, Code.Unavailable);
}
