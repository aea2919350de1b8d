// The SSE stream read by a real browser's EventSource (Debian's chromium):
// history then live, one event per seq, the key passed as access_token, and
// the `turn_id` filter ending with `data: [DONE]`.
import test from "ava";
import type { Browser } from "playwright-core";
import { apiKeysEnv, clientsWithKey } from "../support/keys.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { launchChromium } from "./browser.js";
import { setTimeout as delay } from "node:timers/promises";

const keys = {
  client: { key: "sse-client-key-00001", tenant: "acme", role: "client" },
  agent: { key: "sse-agent-key-000001", tenant: "acme", role: "agent" },
};

let server: TestServer;
let browser: Browser;
test.before(async () => {
  server = await startTestServer("redis", { EVENTIDE_API_KEYS: apiKeysEnv(keys) });
  browser = await launchChromium();
});
test.after.always(async () => {
  await browser?.close();
  await server?.close();
});

/**
 * Runs in the page (a string: the test runner's transpiler would add helpers the page lacks).
 * watch(name, url, types) opens an EventSource and records what arrives in streams[name].
 */
const watcher = `
  window.streams = {};
  window.watch = (name, url, types) => {
    const stream = (window.streams[name] = { received: [], done: false });
    const source = new EventSource(url);
    for (const type of types) {
      source.addEventListener(type, (e) => stream.received.push({ lastEventId: e.lastEventId, type: e.type, data: e.data }));
    }
    source.onmessage = (e) => {
      if (e.data === "[DONE]") {
        stream.done = true;
        source.close();
      }
    };
  };
`;

interface Received {
  lastEventId: string;
  type: string;
  data: string;
}

test("EventSource in chromium: history, then live events as they are appended, each seq once; [DONE] ends a turn-filtered stream", async (t) => {
  const client = clientsWithKey(server.baseUrl, keys.client.key);
  const agent = clientsWithKey(server.baseUrl, keys.agent.key);
  const submitted = await client.turns.submitTurn({ input: { text: "hello" } });
  const threadId = submitted.thread!.threadId;
  const turnId = submitted.turn!.turnId;

  const page = await browser.newPage();
  // Same origin as the stream: any page of the server will do.
  await page.goto(`${server.baseUrl}/healthz`);
  await page.evaluate(watcher);
  await page.evaluate(`watch("all", ${JSON.stringify(`/threads/${threadId}/events/stream?access_token=${keys.client.key}`)}, ${JSON.stringify(["thread.created", "turn.submitted", "message.delta"])})`);
  const received = (): Promise<Received[]> => page.evaluate(`streams.all.received`);
  await waitUntil(async () => (await received()).length >= 2);

  // Live: appended after the browser caught up.
  for (const delta of ["a", "b", "c"]) {
    await agent.events.appendEvents({ threadId, events: [{ type: "message.delta", payload: { delta } }] });
  }
  await waitUntil(async () => (await received()).length >= 5);
  const all = await received();
  t.deepEqual(
    all.map((r) => [r.lastEventId, r.type]),
    [
      ["1", "thread.created"],
      ["2", "turn.submitted"],
      ["3", "message.delta"],
      ["4", "message.delta"],
      ["5", "message.delta"],
    ],
  );
  t.deepEqual(all.slice(2).map((r) => JSON.parse(r.data).payload.delta), ["a", "b", "c"]);

  // A turn-filtered stream ends with [DONE] when the turn does.
  await page.evaluate(`watch("turn", ${JSON.stringify(`/threads/${threadId}/events/stream?turn_id=${turnId}&access_token=${keys.client.key}`)}, ["turn.submitted", "turn.cancelled"])`);
  await client.turns.cancelTurn({ turnId });
  await waitUntil(() => page.evaluate(`streams.turn.done`));
  t.deepEqual(((await page.evaluate(`streams.turn.received`)) as Received[]).map((r) => r.lastEventId), ["2", "6"]);
  await page.screenshot({ path: "test-artifacts/event-source.png" });
  await page.close();
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ; ) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error("timed out");
    await delay(50);
  }
}
