// Agents built with the TypeScript client's runAgent, against real servers on
// the Redis tier: a server restart mid-turn, cancellation, lease renewal,
// delta coalescing and draining on shutdown.
import test from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { type AgentTurn, createNodeClient, type TurnWriter, TurnStopped } from "../../clients/typescript/src/node.js";
import { exited, kill, spawnServer } from "../support/child.js";
import { startTestServer, waitForTurnStatus } from "../support/server.js";
import { openRealTiers } from "../support/tiers.js";

/** Resolves once `check` holds (polling), or fails after the timeout. */
async function until(check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !check(); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(20);
  }
}

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i} `);

test.serial("an agent survives a server restart mid-turn and its turn completes exactly once", async (t) => {
  t.timeout(180_000);
  const real = await openRealTiers();
  t.teardown(() => real.cleanup());
  const dataDir = await mkdtemp(join(tmpdir(), "eventide-client-agent-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const roles = "server,persister,dispatcher";
  const env = { ...real.env, EVENTIDE_DATA_DIR: dataDir, EVENTIDE_LEASE_TTL: "60s" };
  let server = await spawnServer(roles, env);
  t.teardown(() => kill(server.child));
  const port = new URL(server.url).port;
  const client = createNodeClient({ baseUrl: server.url, timeoutMs: 5_000, backoff: { initialMs: 100, maxMs: 1_000 } });

  const tokens = words(40);
  let started = 0;
  let returned = 0;
  const stop = new AbortController();
  t.teardown(() => stop.abort());
  const agent = client.runAgent({
    agentId: "restart-survivor",
    signal: stop.signal,
    handler: async ({ writer, signal }) => {
      started++;
      for (const token of tokens) {
        writer.delta(token);
        await delay(50, undefined, { signal }).catch(() => {});
      }
      returned++;
    },
  });

  const { turn } = await client.submitTurn({ input: { text: "stream through a restart" } });
  const turnId = turn!.turnId;
  const threadId = turn!.threadId;
  // Mid-turn: some deltas are in the log.
  await until(() => started === 1, "the handler to start");
  for (;;) {
    const { events } = await client.events.listEvents({ threadId, types: ["message.delta"] });
    if (events.length >= 5) break;
    await delay(50);
  }
  server.child.kill("SIGKILL");
  await exited(server.child);
  server = await spawnServer(roles, { ...env, PORT: port });

  const done = await waitForTurnStatus({ turns: () => client.turns }, turnId, TurnStatus.COMPLETED, 90_000);
  t.is(done.status, TurnStatus.COMPLETED);
  const log = (await client.events.listEvents({ threadId, pageSize: 1000 })).events;
  t.deepEqual(log.map((e) => Number(e.seq)), log.map((_, i) => i + 1), "gapless, each seq once");
  t.is(log.filter((e) => e.type === "turn.completed").length, 1, "completed exactly once");
  // The run that completed streamed the whole reply: its deltas (after its turn.started) make the text.
  const lastStart = log.findLastIndex((e) => e.type === "turn.started");
  const text = log.slice(lastStart).filter((e) => e.type === "message.delta").map((e) => String(e.payload!.delta)).join("");
  t.is(text, tokens.join(""));
  t.is(log.filter((e) => e.type === "message.completed").length, 1);
  t.is(returned, 1, "one handler run returned: the turn was not run twice");

  stop.abort();
  await agent;
});

test.serial("cancellation reaches the handler's signal, with TurnStopped('cancelled') as its reason", async (t) => {
  const server = await startTestServer("redis");
  t.teardown(() => server.close());
  const client = createNodeClient({ baseUrl: server.baseUrl });
  let handlerSignal: AbortSignal | undefined;
  const stop = new AbortController();
  const agent = client.runAgent({
    agentId: "cancellable",
    signal: stop.signal,
    handler: async ({ signal }) => {
      handlerSignal = signal;
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    },
  });
  const { turn } = await client.submitTurn({ input: {} });
  await until(() => handlerSignal !== undefined, "the handler to start");
  t.false(handlerSignal!.aborted);
  await client.turns.cancelTurn({ turnId: turn!.turnId, reason: "user pressed stop" });
  // Generous: the assertion is that it happens, not how fast (the feed tells the agent within a second).
  await until(() => handlerSignal!.aborted, "the handler's signal to fire", 15_000);
  t.true(handlerSignal!.reason instanceof TurnStopped);
  t.is((handlerSignal!.reason as TurnStopped).reason, "cancelled");
  t.is((await server.turns().getTurn({ turnId: turn!.turnId })).turn!.status, TurnStatus.CANCELLED);
  stop.abort();
  await agent;
});

test.serial("deltas are coalesced: fewer AppendEvents than tokens, the same text; the lease is renewed past its TTL", async (t) => {
  t.timeout(120_000);
  // A lease of 2 s and a turn of about 4 s: it completes on attempt 1 only if renewals kept it.
  const server = await startTestServer("redis", { EVENTIDE_LEASE_TTL: "2s", EVENTIDE_LEASE_SWEEP: "100ms" });
  t.teardown(() => server.close());
  const client = createNodeClient({ baseUrl: server.baseUrl });
  const tokens = words(400);
  let writer: TurnWriter | undefined;
  const stop = new AbortController();
  const agent = client.runAgent({
    agentId: "coalescer",
    signal: stop.signal,
    coalesceMs: 20,
    handler: async (turn: AgentTurn) => {
      writer = turn.writer;
      for (const [i, token] of tokens.entries()) {
        turn.writer.delta(token);
        // Tokens come faster than the window, in bursts.
        if (i % 40 === 39) await delay(400);
        else if (i % 4 === 3) await delay(1);
      }
      await turn.writer.complete({ tokens: tokens.length });
    },
  });
  const { turn } = await client.submitTurn({ input: {} });
  const done = await waitForTurnStatus(server, turn!.turnId, TurnStatus.COMPLETED, 60_000);
  t.is(done.attempt, 1, "the lease lived through renewals");
  t.true(writer!.appendCalls < tokens.length, `${writer!.appendCalls} AppendEvents for ${tokens.length} tokens`);
  t.true(writer!.appendCalls >= 2, "deltas went out while the turn ran, not only at the end");
  const log = (await server.events().listEvents({ threadId: turn!.threadId, pageSize: 1000 })).events;
  const deltas = log.filter((e) => e.type === "message.delta");
  t.is(deltas.map((e) => String(e.payload!.delta)).join(""), tokens.join(""));
  t.true(deltas.length < tokens.length);
  const completed = log.find((e) => e.type === "message.completed")!;
  t.is(completed.payload!.text, tokens.join(""));
  t.deepEqual(done.output, { tokens: tokens.length });
  stop.abort();
  await agent;
});

test.serial("on its signal the agent drains: a running turn finishes, then runAgent resolves", async (t) => {
  const server = await startTestServer("redis");
  t.teardown(() => server.close());
  const client = createNodeClient({ baseUrl: server.baseUrl });
  let started = false;
  const stop = new AbortController();
  const agent = client.runAgent({
    agentId: "drainer",
    signal: stop.signal,
    drainTimeoutMs: 30_000,
    handler: async ({ writer }) => {
      started = true;
      await delay(500);
      writer.delta("finished after the stop");
    },
  });
  const { turn } = await client.submitTurn({ input: {} });
  await until(() => started, "the handler to start");
  stop.abort();
  await agent;
  const done = (await server.turns().getTurn({ turnId: turn!.turnId })).turn!;
  t.is(done.status, TurnStatus.COMPLETED);
  t.deepEqual(done.output, { text: "finished after the stop" });
});

test.serial("a handler that throws fails the turn as retryable; the retry runs as attempt 2", async (t) => {
  const server = await startTestServer("redis", { EVENTIDE_RETRY_BACKOFF: "50ms" });
  t.teardown(() => server.close());
  const client = createNodeClient({ baseUrl: server.baseUrl });
  const attempts: number[] = [];
  const stop = new AbortController();
  const agent = client.runAgent({
    agentId: "flaky",
    signal: stop.signal,
    handler: ({ attempt }) => {
      attempts.push(attempt);
      if (attempt === 1) throw new Error("model overloaded");
      return { ok: true };
    },
  });
  const { turn } = await client.submitTurn({ input: {} });
  const done = await waitForTurnStatus(server, turn!.turnId, TurnStatus.COMPLETED, 30_000);
  t.deepEqual(attempts, [1, 2]);
  t.deepEqual(done.output, { ok: true });
  const log = (await server.events().listEvents({ threadId: turn!.threadId, pageSize: 1000 })).events;
  t.regex(String(log.find((e) => e.type === "turn.retrying")!.payload!.error), /model overloaded/);
  stop.abort();
  await agent;
});
