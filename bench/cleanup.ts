// What must not outlive an interrupted run (server children, Redis keys,
// Postgres schemas, temp dirs): each resource registers its cleanup while it
// is open, so Ctrl-C undoes whatever is open at that moment.
const pending = new Set<() => Promise<void>>();

/** Registers `cleanup` until the returned function is called (by the normal close path). */
export function onInterrupt(cleanup: () => Promise<void>): () => void {
  pending.add(cleanup);
  return () => pending.delete(cleanup);
}

/** `work` run at most once, however often it is called (a close path and an interrupt may both call it). */
export function runOnce<T>(work: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => (running ??= work());
}

/** Runs every registered cleanup (newest first), each bounded, then exits with `code`. */
export async function cleanUpAndExit(code: number): Promise<never> {
  process.stderr.write("\ninterrupted: stopping servers, dropping bench keys and schemas…\n");
  for (const cleanup of [...pending].reverse()) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      cleanup().catch((err) => process.stderr.write(`cleanup failed: ${String(err)}\n`)),
      new Promise((resolve) => (timer = setTimeout(resolve, 10_000))),
    ]);
    clearTimeout(timer);
  }
  process.exit(code);
}
