// Long server streams end when their server shuts down, with UNAVAILABLE
// rather than a silent end: the client resumes on another server (a tail from
// its last seq, an agent with a new feed).
import { Code, ConnectError } from "@connectrpc/connect";
import { type PassingStream, passThrough, type StreamEndHooks } from "../interceptors/pass-through.js";

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
 * that the shutdown stopped ends with UNAVAILABLE and `message`. A passThrough
 * (not an async generator): an idle tail waits in it for hours, and then holds
 * one pending promise, not a suspended frame.
 */
export function endingAtShutdown<T>(
  open: (signal: AbortSignal) => AsyncIterable<T>,
  call: AbortSignal,
  shutdown: StreamShutdown | undefined,
  message: string,
): PassingStream<T> {
  const bound = new ShutdownBound(open, call, shutdown, message);
  return passThrough(bound, bound);
}

/**
 * The stream passThrough opens at its first pull (as a generator's body runs: a stream never
 * pulled never counts as running), and how it ends. One object with its fields for both, rather
 * than closures over them: an idle tail holds it for hours.
 */
class ShutdownBound<T> implements AsyncIterable<T>, StreamEndHooks {
  /** Aborts with whichever comes first, the call's end or the shutdown, as AbortSignal.any([call, shutdown.signal]) would. */
  private stream: AbortController | undefined;
  private leave: (() => void) | undefined;

  constructor(
    private open: ((signal: AbortSignal) => AsyncIterable<T>) | undefined,
    private readonly call: AbortSignal,
    private readonly shutdown: StreamShutdown | undefined,
    private readonly message: string,
  ) {}

  [Symbol.asyncIterator](): AsyncIterator<T> {
    const open = this.open!;
    // Not kept: `open` holds whatever its caller's scope held.
    this.open = undefined;
    if (!this.shutdown) return open(this.call)[Symbol.asyncIterator]();
    const stream = (this.stream = new AbortController());
    if (this.call.aborted) this.handleEvent();
    else this.call.addEventListener("abort", this, { once: true });
    this.leave = this.shutdown.enter(stream);
    return open(stream.signal)[Symbol.asyncIterator]();
  }

  /** The call's abort. */
  handleEvent(): void {
    this.stream?.abort(this.call.reason);
  }

  end(): void {
    if (this.stream) this.call.removeEventListener("abort", this);
    this.leave?.();
  }

  /** Whatever the abort interrupted (a storage read) is not the caller's error. */
  mapError(err: unknown): unknown {
    return this.stoppedByShutdown() ? new ConnectError(this.message, Code.Unavailable) : err;
  }

  completed(): void {
    if (this.stoppedByShutdown()) throw new ConnectError(this.message, Code.Unavailable);
    endedByDeadline(this.call);
  }

  private stoppedByShutdown(): boolean {
    return !!this.shutdown?.signal.aborted && !this.call.aborted;
  }
}

/**
 * A stream stops quietly when its call's signal aborts; when that was its
 * deadline (grpc-timeout, connect-timeout-ms), the call ends DEADLINE_EXCEEDED
 * as gRPC says, not OK (a client would take OK for the stream's natural end).
 */
function endedByDeadline(call: AbortSignal): void {
  if (call.aborted && call.reason instanceof ConnectError && call.reason.code === Code.DeadlineExceeded) throw call.reason;
}
