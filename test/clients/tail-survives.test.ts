// The TypeScript client's tail against a real server process on the Redis
// tier, while an appender writes through the same client: the server is
// SIGKILLed and started again, SIGTERMed and started again, or its TCP link
// is cut and restored — the tail sees every seq once, in order, and the
// appender's retries append nothing twice.
import test, { type ExecutionContext } from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { createNodeClient, type EventideClient } from "../../clients/typescript/src/node.js";
import { exited, kill, spawnServer, type ServerChild } from "../support/child.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { openRealTiers } from "../support/tiers.js";

const roles = "server,persister,dispatcher";
const total = 60;

interface Setup {
  env: Record<string, string>;
  server: ServerChild;
  port: number;
  restart(signal: NodeJS.Signals): Promise<void>;
}

async function serverProcess(t: ExecutionContext): Promise<Setup> {
  const real = await openRealTiers();
  t.teardown(() => real.cleanup());
  const dataDir = await mkdtemp(join(tmpdir(), "eventide-client-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const env = { ...real.env, EVENTIDE_DATA_DIR: dataDir, EVENTIDE_HEARTBEAT_MS: "500" };
  const setup: Setup = {
    env,
    server: await spawnServer(roles, env),
    port: 0,
    async restart(signal) {
      setup.server.child.kill(signal);
      await exited(setup.server.child);
      // The same port again: the client's base URL does not change.
      setup.server = await spawnServer(roles, { ...env, PORT: String(setup.port) });
    },
  };
  setup.port = Number(new URL(setup.server.url).port);
  t.teardown(() => kill(setup.server.child));
  return setup;
}

/**
 * Appends `total` events one by one through `client` (retrying through the
 * outage), calling `disrupt` once half are in; the tail follows meanwhile.
 */
async function appendAndTail(t: ExecutionContext, client: EventideClient, disrupt: () => Promise<void>): Promise<void> {
  const { thread } = await client.turns.createThread({});
  const threadId = thread!.threadId;
  const controller = new AbortController();
  t.teardown(() => controller.abort());
  const seen: number[] = [];
  let caughtUps = 0;
  const tail = client.tail(threadId, { signal: controller.signal, onCaughtUp: () => caughtUps++ });
  const tailing = (async () => {
    for await (const e of tail) seen.push(Number(e.seq));
  })();

  let lastSeq = 0;
  for (let i = 0; i < total; i++) {
    if (i === total / 2) {
      // Wait for the tail to have some of them, so the disruption hits a stream that is live.
      while (seen.length < 10) await delay(20);
      await disrupt();
    }
    const res = await client.append(threadId, [{ type: "message.delta", payload: { i } }]);
    lastSeq = Number(res.lastSeq);
    await delay(10);
  }
  for (const deadline = Date.now() + 60_000; (seen.at(-1) ?? 0) < lastSeq && Date.now() < deadline; ) await delay(50);
  controller.abort();
  await tailing;

  const log = (await client.events.listEvents({ threadId, pageSize: 1000 })).events.map((e) => Number(e.seq));
  t.deepEqual(log, log.map((_, i) => i + 1), "the log is gapless");
  t.is(log.length, total + 1, "thread.created and each append once: the retries appended nothing twice");
  t.deepEqual(seen, log, "the tail saw every seq once, in order");
  t.true(tail.state.reconnects >= 1, "the tail did reconnect");
  t.true(caughtUps >= 2, "caught up again after the reconnect");
}

const clientOptions = { timeoutMs: 5_000, backoff: { initialMs: 100, maxMs: 1_000 } };

test.serial("the tail survives the server SIGKILLed and started again mid-stream", async (t) => {
  t.timeout(180_000);
  const setup = await serverProcess(t);
  const client = createNodeClient({ baseUrl: setup.server.url, ...clientOptions });
  await appendAndTail(t, client, async () => {
    await setup.restart("SIGKILL");
    t.is(setup.server.child.exitCode, null);
  });
});

test.serial("the tail survives a SIGTERM (the server ends tails UNAVAILABLE) and a start again", async (t) => {
  t.timeout(180_000);
  const setup = await serverProcess(t);
  const client = createNodeClient({ baseUrl: setup.server.url, ...clientOptions });
  await appendAndTail(t, client, () => setup.restart("SIGTERM"));
});

test.serial("the tail survives a dropped TCP connection", async (t) => {
  t.timeout(180_000);
  const setup = await serverProcess(t);
  const proxy = new TcpProxy({ host: "127.0.0.1", port: setup.port });
  await proxy.start();
  t.teardown(() => proxy.stop());
  // Connect over HTTP/2 (one connection for every call): the cut drops them all.
  const client = createNodeClient({ baseUrl: `http://127.0.0.1:${proxy.port}`, protocol: "connect", ...clientOptions });
  await appendAndTail(t, client, async () => {
    await proxy.cut();
    await delay(500);
    await proxy.restore();
  });
});
