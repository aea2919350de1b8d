// A server stream's messages passed through an interceptor, with a hook on how
// the stream ends. What `async function* (){ try { yield* inner } catch … finally … }`
// does, as a plain iterator: a stream that waits at a message (an idle followed
// tail, for hours) holds one pending promise in each such layer, not a suspended
// generator with its register file, request queue and promises. Ten thousand
// idle tails hold every layer ten thousand times.

export interface StreamEndHooks {
  /** What the inner stream threw becomes what this one throws. */
  mapError?(err: unknown): unknown;
  /** Runs once when the stream ended: it finished, threw, or was returned (not if it was never pulled). */
  end?(): void;
  /**
   * Runs once when the inner stream finished by itself (after `end`; not when it threw or was
   * returned), as code after the generator's `yield*` would: what it throws ends the stream.
   */
  completed?(): void;
}

/** A stream that passes through: iterable once, as the async generator it stands for. */
export type PassingStream<T> = AsyncIterableIterator<T> & Required<Pick<AsyncIterator<T>, "return" | "throw">>;

/** Iterable once, as the async generator it stands for. */
export function passThrough<T>(messages: AsyncIterable<T>, hooks: StreamEndHooks): PassingStream<T> {
  return new PassThrough(messages, hooks);
}

class PassThrough<T> implements AsyncIterableIterator<T> {
  private inner: AsyncIterator<T> | undefined;
  private ended = false;

  constructor(
    private readonly messages: AsyncIterable<T>,
    private readonly hooks: StreamEndHooks,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    // As a generator does, the inner stream is opened at the first pull.
    this.inner ??= this.messages[Symbol.asyncIterator]();
    return this.settle(this.inner.next());
  }

  return(value?: unknown): Promise<IteratorResult<T>> {
    // A generator returned before its first pull completes without running its body.
    if (!this.inner) {
      this.ended = true;
      return Promise.resolve({ done: true, value: value as T });
    }
    const result = this.inner.return ? this.inner.return(value) : Promise.resolve({ done: true as const, value: value as T });
    // Returned, not finished: `completed` does not run.
    return result.then((r) => {
      this.finish();
      return r;
    }, this.failed);
  }

  throw(err?: unknown): Promise<IteratorResult<T>> {
    if (!this.inner || !this.inner.throw) {
      this.finish();
      return Promise.reject(err);
    }
    return this.settle(this.inner.throw(err));
  }

  private settle(result: Promise<IteratorResult<T>>): Promise<IteratorResult<T>> {
    return result.then(this.passed, this.failed);
  }

  private readonly passed = (r: IteratorResult<T>): IteratorResult<T> => {
    if (!r.done || this.ended) return r;
    this.finish();
    this.hooks.completed?.();
    return r;
  };

  private readonly failed = (err: unknown): never => {
    this.finish();
    throw this.hooks.mapError ? this.hooks.mapError(err) : err;
  };

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.hooks.end?.();
  }
}
