// The web console in a real browser (Debian's chromium, headless, through
// playwright-core): a turn submitted from the page streams in token by token
// and completes; the server SIGKILLed mid-stream and started again on the same
// port, the page says "reconnecting", resumes, and ends with every seq of the
// log exactly once; with API keys the page asks for one. Screenshots go to
// test-artifacts/.
import test from "ava";
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Browser, Page } from "playwright-core";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { buildConsole } from "../../scripts/build-console.js";
import { replyTokens } from "../../workers/reference-agent/reference-agent.js";
import { kill } from "../support/child.js";
import { clientsWithKey } from "../support/keys.js";
import { startTestServer } from "../support/server.js";
import { openRealTiers } from "../support/tiers.js";
import { freePort, launchChromium, screenshotPath, startServerProcess } from "./browser.js";

// What the code run inside the page touches: the Node project's libs have no DOM.
interface PageElement {
  textContent: string | null;
  querySelectorAll(selector: string): ArrayLike<PageElement>;
}
declare const document: { querySelector(selector: string): PageElement | null; querySelectorAll(selector: string): ArrayLike<PageElement> };
declare const sessionStorage: { getItem(key: string): string | null };

let consoleDir = "";
let browser: Browser;

test.before(async () => {
  consoleDir = await mkdtemp(join(tmpdir(), "eventide-console-"));
  await buildConsole(consoleDir);
  browser = await launchChromium();
});

test.after.always(async () => {
  await browser?.close();
  if (consoleDir) await rm(consoleDir, { recursive: true, force: true });
});

/** A page that records its uncaught errors, closed with the test. */
async function openPage(t: { teardown(fn: () => Promise<void>): void }): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  return { page, errors };
}

/** Every seq the page rendered, in DOM order (delta tokens and event rows). */
function renderedSeqs(page: Page): Promise<number[]> {
  return page.$$eval("#timeline [data-seq]", (els) => els.map((el) => Number(el.getAttribute("data-seq"))));
}

test.serial("a turn streams in token by token; after a server restart mid-stream the page resumes with every seq exactly once", async (t) => {
  t.timeout(150_000);
  const real = await openRealTiers();
  t.teardown(() => real.cleanup());
  const dataDir = await mkdtemp(join(tmpdir(), "eventide-data-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    ...real.env,
    EVENTIDE_CONSOLE_DIR: consoleDir,
    // The cold tier's directory (no S3 here; the archiver does not run).
    EVENTIDE_DATA_DIR: dataDir,
    EVENTIDE_AGENT_TOKEN_DELAY: "80ms",
    // The killed process's agent lease lapses soon, so the restarted one retries the turn.
    EVENTIDE_LEASE_TTL: "2s",
    EVENTIDE_LEASE_SWEEP: "100ms",
    EVENTIDE_RETRY_BACKOFF: "50ms",
  };
  const roles = "server,persister,dispatcher,agent";
  const started = Date.now();
  const phase = (name: string) => t.log(`${name}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  let server: ChildProcess = await startServerProcess(roles, port, env, "console-server-1.log");
  phase("server up");
  t.teardown(() => kill(server));
  const { page, errors } = await openPage(t);
  await page.goto(baseUrl);
  await page.getByTestId("thread-list").waitFor({ state: "attached" });

  // 1. A short turn on a new thread: the agent's reply grows token by token, then the turn completes.
  const first = { text: "hello from the browser, please echo this back word by word" };
  await page.getByTestId("turn-input").fill(first.text);
  const growth = page.evaluate(
    () =>
      new Promise<number[]>((resolve) => {
        const lengths: number[] = [];
        const timer = setInterval(() => {
          const text = document.querySelector("[data-testid=message] .text")?.textContent ?? "";
          if (text.length > (lengths.at(-1) ?? 0)) lengths.push(text.length);
          if (document.querySelector('[data-type="turn.completed"]')) {
            clearInterval(timer);
            resolve(lengths);
          }
        }, 15);
      }),
  );
  await page.getByTestId("submit-turn").click();
  const lengths = await growth;
  const reply = replyTokens(first).join("");
  t.true(lengths.length >= 4, `the reply grew in steps: ${lengths.join(" → ")}`);
  t.is(lengths.at(-1), reply.length);
  t.is(await page.getByTestId("message").first().locator(".text").textContent(), reply);
  await page.waitForFunction(() => document.querySelector("[data-testid=tail-status]")?.textContent === "live");
  const threadId = /#\/threads\/([0-9A-Z]{26})$/.exec(page.url())?.[1];
  t.truthy(threadId, "the page opened the new thread");
  await page.locator(`[data-testid=thread-item][data-thread-id="${threadId}"]`).waitFor();
  await page.screenshot({ path: screenshotPath("console-1-turn-completed.png") });
  phase("first turn completed");

  // 2. A long turn; the server is SIGKILLed while its deltas stream.
  const second = { text: Array.from({ length: 48 }, (_, i) => ["events", "arrive", "in", "order", "with", "gapless", "seqs"][i % 7]).join(" ") };
  await page.getByTestId("turn-input").fill(second.text);
  await page.getByTestId("submit-turn").click();
  const tokensOfSecond = (n: number) =>
    page.waitForFunction((n) => {
      const messages = document.querySelectorAll("[data-testid=message]");
      return messages.length === 2 && messages[1].querySelectorAll(".token").length >= n;
    }, n);
  await tokensOfSecond(3);
  await page.screenshot({ path: screenshotPath("console-2-streaming.png") });
  await tokensOfSecond(6);
  await kill(server, "SIGKILL");
  await page.waitForFunction(() => document.querySelector("[data-testid=tail-status]")?.textContent === "reconnecting…");
  phase("killed mid-stream, page reconnecting");
  const beforeRestart = await renderedSeqs(page);
  await page.screenshot({ path: screenshotPath("console-3-reconnecting.png") });

  // 3. The same port again: the page resumes after its last seq; the turn is retried and completes.
  server = await startServerProcess(roles, port, env, "console-server-2.log");
  phase("server up again");
  await page.locator('[data-type="turn.completed"]').nth(1).waitFor({ timeout: 60_000 });
  await page.waitForFunction(() => document.querySelector("[data-testid=tail-status]")?.textContent === "live");
  await page.screenshot({ path: screenshotPath("console-4-resumed.png") });
  phase("retried turn completed");

  const seqs = await renderedSeqs(page);
  const events = createClient(EventService, createGrpcTransport({ baseUrl }));
  const log = (await events.listEvents({ threadId, pageSize: 1000 })).events;
  const logSeqs = log.map((e) => Number(e.seq));
  t.deepEqual(logSeqs, logSeqs.map((_, i) => i + 1), "the log is gapless");
  t.deepEqual([...seqs].sort((a, b) => a - b), logSeqs, "the page shows every seq of the log exactly once");
  t.deepEqual(seqs.slice(0, beforeRestart.length), beforeRestart, "what was shown before the restart stayed as it was");
  t.true(log.some((e) => e.type === "turn.retrying"), "the turn cut off by the kill was retried");
  t.is(await page.getByTestId("gap-banner").isHidden(), true);
  t.is(await page.getByTestId("duplicates").getAttribute("data-count"), "0", "the server sent no seq twice");
  t.is(await page.getByTestId("last-seq").getAttribute("data-seq"), String(logSeqs.length));
  // The retried attempt streamed the whole reply again, in a message of its own.
  const retried = page.locator("[data-testid=message]").last();
  t.is(await retried.getAttribute("data-attempt"), "2");
  t.is(await retried.locator(".text").textContent(), replyTokens(second).join(""));
  t.deepEqual(errors, [], "no uncaught errors in the page");
});

test.serial("with API keys the page asks for a key, sends it as a bearer token, and lists the threads", async (t) => {
  const key = `console-${randomUUID()}`;
  const server = await startTestServer("redis", { EVENTIDE_API_KEYS: `${key}:acme:client`, EVENTIDE_CONSOLE_DIR: consoleDir });
  t.teardown(() => server.close());
  const { thread } = await clientsWithKey(server.baseUrl, key).turns.createThread({});
  const threadId = thread!.threadId;
  const { page, errors } = await openPage(t);
  await page.goto(server.baseUrl);

  const dialog = page.getByTestId("key-dialog");
  await dialog.waitFor({ state: "visible" });
  t.regex((await page.getByTestId("key-reason").textContent()) ?? "", /requires an API key/);
  await page.getByTestId("key-input").fill("not-the-key");
  await page.getByTestId("key-submit").click();
  await page.waitForFunction(() => /refused/.test(document.querySelector("[data-testid=key-reason]")?.textContent ?? ""));
  t.true(await dialog.isVisible(), "a wrong key is asked again");
  await page.screenshot({ path: screenshotPath("console-5-key-prompt.png") });

  await page.getByTestId("key-input").fill(key);
  await page.getByTestId("key-submit").click();
  const item = page.locator(`[data-testid=thread-item][data-thread-id="${threadId}"]`);
  await item.waitFor();
  t.true(await dialog.isHidden());
  // The tail sends the key too.
  await item.locator("a").click();
  await page.locator('[data-type="thread.created"]').waitFor();
  t.is(await page.evaluate(() => sessionStorage.getItem("eventide.apiKey")), key);
  await page.screenshot({ path: screenshotPath("console-6-after-key.png") });
  t.deepEqual(errors, []);
});
