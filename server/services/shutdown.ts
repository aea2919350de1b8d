// Long server streams end when their server shuts down, with UNAVAILABLE
// rather than a silent end: the client resumes on another server (a tail from
// its last seq, an agent with a new feed).
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * A server's shutdown as its long streams see it: the signal that ends them,
 * and the streams still running, whose clean-up (an agent feed requeues the
 * turns it held) must finish before the tiers it writes to are closed.
 */
export class StreamShutdown {
  private readonly running = new Set<Promise<void>>();

  constructor(readonly signal: AbortSignal) {}

  /** Counts a stream as running until the returned function is called. */
  enter(): () => void {
    let leave!: () => void;
    const left = new Promise<void>((resolve) => (leave = resolve));
    this.running.add(left);
    return () => {
      this.running.delete(left);
      leave();
    };
  }

  /** Resolves when no stream is running any more (its finally blocks done). */
  async ended(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }
}

/**
 * Runs `open` on a signal that aborts when the call ends or the server shuts
 * down. The stream finishes first (its `finally` blocks run), then a stream
 * that the shutdown stopped ends with UNAVAILABLE and `message`.
 */
export async function* endingAtShutdown<T>(
  open: (signal: AbortSignal) => AsyncIterable<T>,
  call: AbortSignal,
  shutdown: StreamShutdown | undefined,
  message: string,
): AsyncGenerator<T> {
  if (!shutdown) return yield* open(call);
  const stoppedByShutdown = () => shutdown.signal.aborted && !call.aborted;
  const leave = shutdown.enter();
  try {
    yield* open(AbortSignal.any([call, shutdown.signal]));
  } catch (err) {
    // Whatever the abort interrupted (a storage read) is not the caller's error.
    if (!stoppedByShutdown()) throw err;
  } finally {
    leave();
  }
  if (stoppedByShutdown()) throw new ConnectError(message, Code.Unavailable);
}
