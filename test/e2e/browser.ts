// A real browser for the end-to-end tests: Debian's chromium driven by
// playwright-core, plus the server as a child process on a fixed port (so a
// restarted server comes back where the page reconnects).
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, chromium } from "playwright-core";
import { setTimeout as delay } from "node:timers/promises";

export const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
export const artifacts = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));
const main = fileURLToPath(new URL("../../server/main.ts", import.meta.url));

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(chromiumPath)) {
    throw new Error(
      `no chromium at ${chromiumPath}: the console's end-to-end tests need Debian's chromium (apt-get install chromium; .ci/run installs it), or CHROMIUM_PATH pointing at one`,
    );
  }
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Without the background-networking flags chromium dials Google services, which a closed network refuses.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export function screenshotPath(name: string): string {
  mkdirSync(artifacts, { recursive: true });
  return join(artifacts, name);
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * `npm start`'s entry point with the given roles on 127.0.0.1:`port`, its
 * output in test-artifacts/<logName>; resolves once it serves the console.
 */
export async function startServerProcess(roles: string, port: number, env: Record<string, string>, logName: string): Promise<ChildProcess> {
  const log = openSync(screenshotPath(logName), "a");
  const child = spawn(process.execPath, ["--import", "tsx", main, roles], {
    env: { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "warn", PORT: String(port), HOST: "127.0.0.1", ...env },
    stdio: ["ignore", log, log],
  });
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code, signal) => reject(new Error(`the server exited before it was up (${signal ?? code}); see test-artifacts/${logName}`))),
  );
  exited.catch(() => {});
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
    const up = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false);
    if (up) return child;
    await Promise.race([exited, delay(100)]);
  }
  child.kill("SIGKILL");
  throw new Error(`the server did not serve the console within 60 s; see test-artifacts/${logName}`);
}
