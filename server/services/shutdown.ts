// Long server streams end when their server shuts down, with UNAVAILABLE
// rather than a silent end: the client resumes on another server (a tail from
// its last seq, an agent with a new feed).
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * A server's shutdown as its long streams see it: the signal that ends them,
 * and the streams still running, whose clean-up (an agent feed requeues the
 * turns it held) must finish before the tiers it writes to are closed. One
 * listener on the signal aborts every running stream's controller: ten
 * thousand idle tails hold a Set entry each, not a composite signal
 * (AbortSignal.any keeps weak references and finalizers per signal).
 */
export class StreamShutdown {
  private readonly running = new Set<AbortController>();
  private whenEnded: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(readonly signal: AbortSignal) {
    signal.addEventListener(
      "abort",
      () => {
        for (const stream of this.running) stream.abort(signal.reason);
      },
      { once: true },
    );
  }

  /** Counts a stream as running, its controller aborted at shutdown, until the returned function is called. */
  enter(stream: AbortController = new AbortController()): () => void {
    if (this.signal.aborted) stream.abort(this.signal.reason);
    this.running.add(stream);
    return () => {
      this.running.delete(stream);
      if (this.running.size === 0) this.whenEnded?.resolve();
    };
  }

  /** Resolves when no stream is running any more (its finally blocks done). */
  async ended(): Promise<void> {
    if (this.running.size === 0) return;
    if (!this.whenEnded) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.whenEnded = { promise, resolve: () => ((this.whenEnded = undefined), resolve()) };
    }
    return this.whenEnded.promise;
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
  if (!shutdown) {
    yield* open(call);
    return endedByDeadline(call);
  }
  const stoppedByShutdown = () => shutdown.signal.aborted && !call.aborted;
  // Aborts with whichever comes first, as AbortSignal.any([call, shutdown.signal]) would.
  const stream = new AbortController();
  const callEnded = () => stream.abort(call.reason);
  if (call.aborted) callEnded();
  else call.addEventListener("abort", callEnded, { once: true });
  const leave = shutdown.enter(stream);
  try {
    yield* open(stream.signal);
  } catch (err) {
    // Whatever the abort interrupted (a storage read) is not the caller's error.
    if (!stoppedByShutdown()) throw err;
  } finally {
    call.removeEventListener("abort", callEnded);
    leave();
  }
  if (stoppedByShutdown()) throw new ConnectError(message, Code.Unavailable);
  endedByDeadline(call);
}

/**
 * A stream stops quietly when its call's signal aborts; when that was its
 * deadline (grpc-timeout, connect-timeout-ms), the call ends DEADLINE_EXCEEDED
 * as gRPC says, not OK (a client would take OK for the stream's natural end).
 */
function endedByDeadline(call: AbortSignal): void {
  if (call.aborted && call.reason instanceof ConnectError && call.reason.code === Code.DeadlineExceeded) throw call.reason;
}
