// The one way this code waits: for a time, cut short by an abort or by a wake-up call.

export interface Wait {
  /** Resolves after the time, on abort, or on wake(). Never rejects. */
  done: Promise<void>;
  wake(): void;
}

export function waitFor(ms: number, signal: AbortSignal): Wait {
  let wake = () => {};
  const done = new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const finish = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", finish);
      resolve();
    };
    const timer = setTimeout(finish, ms);
    signal.addEventListener("abort", finish, { once: true });
    wake = finish;
  });
  return { done, wake: () => wake() };
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return waitFor(ms, signal).done;
}
