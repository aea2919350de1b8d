// When a call is worth repeating, and how long to wait before the next try.
import { Code, ConnectError } from "@connectrpc/connect";

export interface Backoff {
  /** The first wait (halved to doubled by jitter). */
  initialMs: number;
  /** The longest wait. */
  maxMs: number;
}

export const defaultBackoff: Backoff = { initialMs: 250, maxMs: 5_000 };

/** Doubling waits with jitter, so clients cut off together do not come back together. */
export function backoffMs(failures: number, backoff: Backoff = defaultBackoff): number {
  const base = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.max(0, failures - 1));
  return base / 2 + Math.random() * (base / 2);
}

/** Resolves after `ms`, or at once when the signal aborts. Never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * A write may be retried on these only: the server was unreachable or too
 * slow, and the request may or may not have landed (fixed event ids and
 * idempotency keys make the retry safe). Also ABORTED, which connect-node
 * reports for a connection reset mid-call (a killed server) and eventide's
 * server answers for "busy, retry shortly"; and the HTTP/2 REFUSED_STREAM of
 * a server shutting down (never processed), which connect-node 2.1 reports
 * as INTERNAL.
 */
export function isTransient(err: unknown): boolean {
  const e = ConnectError.from(err);
  if (e.code === Code.Internal) return /REFUSED_STREAM/.test(e.rawMessage);
  return e.code === Code.Unavailable || e.code === Code.DeadlineExceeded || e.code === Code.Aborted;
}

export interface RetryOptions {
  signal?: AbortSignal;
  backoff?: Backoff;
  /** Stop retrying once this much time has passed since the first try (default 60 s). */
  giveUpAfterMs?: number;
}

/** Runs `call` until it succeeds, fails with a non-transient error, the time is up or the signal aborts. */
export async function retrying<T>(call: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const started = Date.now();
  const giveUpAfterMs = options.giveUpAfterMs ?? 60_000;
  for (let failures = 1; ; failures++) {
    try {
      return await call();
    } catch (err) {
      if (options.signal?.aborted || !isTransient(err)) throw err;
      const delayMs = backoffMs(failures, options.backoff);
      if (Date.now() + delayMs - started > giveUpAfterMs) throw err;
      await sleep(delayMs, options.signal);
      if (options.signal?.aborted) throw err;
    }
  }
}
