// eventide roles as child processes, for tests that kill them.
import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";

const main = fileURLToPath(new URL("../../server/main.ts", import.meta.url));

/** Role processes not yet seen to exit. */
const alive = new Set<ChildProcess>();
// A test that fails or times out mid-way may never reach its teardown: its children must not
// outlive the test process (they hold the runner's stdout open, and CI waits for it to close).
process.on("exit", () => {
  for (const child of alive) child.kill("SIGKILL");
});

function tracked(child: ChildProcess): ChildProcess {
  alive.add(child);
  child.once("exit", () => alive.delete(child));
  return child;
}

export function spawnRole(role: string, env: Record<string, string>): ChildProcess {
  return tracked(
    spawn(process.execPath, ["--import", "tsx", main, role], {
      env: { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn", ...env },
      stdio: ["ignore", "inherit", "inherit"],
    }),
  );
}

export function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Sends `signal` and waits for the exit; one that does not come within `exitWithinMs` is an error (the child is then SIGKILLed). */
export async function kill(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL", exitWithinMs = 30_000): Promise<void> {
  child.kill(signal);
  const timer = new AbortController();
  const gone = await Promise.race([exited(child).then(() => true), delay(exitWithinMs, false, { signal: timer.signal }).catch(() => false)]);
  timer.abort();
  if (gone) return;
  child.kill("SIGKILL");
  await exited(child);
  throw new Error(`pid ${child.pid} did not exit within ${exitWithinMs} ms of ${signal}`);
}

export interface ServerChild {
  child: ChildProcess;
  /** Where the banner says it listens: http(s)://127.0.0.1:<port>. */
  url: string;
  /** Everything it printed on stdout so far (banner, JSON log lines). */
  output(): string;
}

/**
 * A process running the server role (and whatever else `roles` names) on a
 * free loopback port; resolves once its start-up banner names the address.
 */
export async function spawnServer(roles: string, env: Record<string, string>, timeoutMs = 45_000): Promise<ServerChild> {
  const child = tracked(
    spawn(process.execPath, ["--import", "tsx", main, roles], {
      env: { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn", PORT: "0", HOST: "127.0.0.1", ...env },
      stdio: ["ignore", "pipe", "inherit"],
    }),
  );
  let output = "";
  child.stdout!.setEncoding("utf8");
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no start-up banner within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onExit = () => fail(new Error(`the server exited before it was up (code ${child.exitCode}):\n${output}`));
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.off("exit", onExit);
      child.kill("SIGKILL");
      reject(err);
    };
    child.once("exit", onExit);
    child.stdout!.on("data", (chunk: string) => {
      output += chunk;
      const match = /eventide is up on (https?:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.off("exit", onExit);
      resolve(match[1]);
    });
  });
  return { child, url, output: () => output };
}
