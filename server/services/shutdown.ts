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
 * that the shutdown stopped ends with UNAVAILABLE and `message`. An iterator
 * object rather than an async generator: an idle tail waits in it for hours,
 * and then holds its fields, not a suspended frame.
 */
export function endingAtShutdown<T>(
  open: (signal: AbortSignal) => AsyncIterable<T>,
  call: AbortSignal,
  shutdown: StreamShutdown | undefined,
  message: string,
): AsyncIterableIterator<T> & Required<Pick<AsyncIterator<T>, "return">> {
  return new EndingAtShutdown(open, call, shutdown, message);
}

const done = { done: true, value: undefined } as const;

class EndingAtShutdown<T> implements AsyncIterableIterator<T> {
  private inner: AsyncIterator<T> | undefined;
  /** Aborts with whichever comes first, the call's end or the shutdown, as AbortSignal.any([call, shutdown.signal]) would. */
  private stream: AbortController | undefined;
  private leave: (() => void) | undefined;
  private ended = false;

  constructor(
    private open: ((signal: AbortSignal) => AsyncIterable<T>) | undefined,
    private readonly call: AbortSignal,
    private readonly shutdown: StreamShutdown | undefined,
    private readonly message: string,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.ended) return Promise.resolve(done);
    if (!this.inner) this.start();
    return this.inner!.next().then(this.passed, this.failed);
  }

  async return(value?: unknown): Promise<IteratorResult<T>> {
    if (!this.inner || this.ended) {
      this.ended = true;
      this.open = undefined;
      return { done: true, value: value as T };
    }
    try {
      await this.inner.return?.(value);
    } finally {
      this.finish();
    }
    return { done: true, value: value as T };
  }

  async throw(err?: unknown): Promise<IteratorResult<T>> {
    await this.return();
    throw err;
  }

  private start(): void {
    const open = this.open!;
    this.open = undefined;
    const { call, shutdown } = this;
    if (!shutdown) {
      this.inner = open(call)[Symbol.asyncIterator]();
      return;
    }
    const stream = (this.stream = new AbortController());
    if (call.aborted) this.callEnded();
    else call.addEventListener("abort", this, { once: true });
    this.leave = shutdown.enter(stream);
    this.inner = open(stream.signal)[Symbol.asyncIterator]();
  }

  /** The call's abort (the wrapper itself listens: Node still wraps a listener object in a function of its own). */
  handleEvent(): void {
    this.callEnded();
  }

  private callEnded(): void {
    this.stream?.abort(this.call.reason);
  }

  private stoppedByShutdown(): boolean {
    return !!this.shutdown?.signal.aborted && !this.call.aborted;
  }

  private readonly passed = (r: IteratorResult<T>): IteratorResult<T> => {
    if (!r.done) return r;
    this.finish();
    if (this.stoppedByShutdown()) throw new ConnectError(this.message, Code.Unavailable);
    endedByDeadline(this.call);
    return r;
  };

  private readonly failed = (err: unknown): never => {
    this.finish();
    // Whatever the abort interrupted (a storage read) is not the caller's error.
    if (this.stoppedByShutdown()) throw new ConnectError(this.message, Code.Unavailable);
    throw err;
  };

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.shutdown) this.call.removeEventListener("abort", this);
    this.leave?.();
    this.leave = undefined;
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
