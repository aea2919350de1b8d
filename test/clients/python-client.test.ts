// The Python client (clients/python, on Debian's python3-grpcio) against real
// servers on the Redis tier: its tail resumes across a SIGKILLed server and a
// dropped TCP connection with every seq once, in order; run_agent coalesces
// deltas, keeps a lease alive through a turn longer than the lease TTL, and
// passes a cancellation to its handler; the example agent streams a reply.
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { setTimeout as delay } from "node:timers/promises";
import test from "ava";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { type Turn, TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { kill, spawnServer } from "../support/child.js";
import { clientsWithKey } from "../support/keys.js";
import { type PythonChild, pythonClientDir, spawnPython } from "../support/python.js";
import { collectTail, startTestServer, type TestServer, waitForTurnStatus } from "../support/server.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { openRealTiers } from "../support/tiers.js";

const leaseTtlMs = 2_000;
let server: TestServer;
test.before(async () => {
  // A short lease: a turn of a few seconds outlives it several times unless it is renewed.
  server = await startTestServer("redis", { EVENTIDE_LEASE_TTL: `${leaseTtlMs}ms`, EVENTIDE_LEASE_SWEEP: "100ms" });
});
test.after.always(async () => {
  await server?.close();
});

const children: PythonChild[] = [];
function python(args: string[], env: Record<string, string> = {}): PythonChild {
  const child = spawnPython(args, env);
  children.push(child);
  return child;
}
test.afterEach.always(() => {
  for (const c of children.splice(0)) if (c.child.exitCode === null) c.child.kill("SIGKILL");
});

/** The seqs a tail probe printed, in order. */
const seqsOf = (probe: PythonChild) => probe.lines.filter((l) => "seq" in l).map((l) => l.seq as number);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function appendN(events: Client<typeof EventService>, threadId: string, n: number, tag: string) {
  for (let i = 0; i < n; i += 5) {
    const batch = Array.from({ length: Math.min(5, n - i) }, (_, j) => ({ eventId: `${tag}-${i + j}`, type: "message.delta", payload: { delta: `${i + j}` } }));
    await events.appendEvents({ threadId, events: batch });
  }
}

/** The turn once it ended, or once its first attempt was given up (a lapsed lease requeues it). */
async function settled(turnId: string, timeoutMs = 60_000): Promise<Turn> {
  const ended = [TurnStatus.COMPLETED, TurnStatus.FAILED, TurnStatus.CANCELLED, TurnStatus.DEAD_LETTERED];
  for (const deadline = Date.now() + timeoutMs; ; ) {
    const { turn } = await server.turns().getTurn({ turnId });
    if (ended.includes(turn!.status) || turn!.attempt > 1 || Date.now() > deadline) return turn!;
    await delay(25);
  }
}

test.serial("the Python unit tests pass (tail resume logic, turn writer)", async (t) => {
  const run = python(["-m", "unittest", "discover", "-s", "tests", "-p", "test_*.py"]);
  const code = await run.exit();
  t.is(code, 0, run.stderr());
});

test.serial("the Python tail survives a SIGKILLed server started again: every seq once, in order", async (t) => {
  t.timeout(150_000); // two server start-ups on a loaded machine
  const real = await openRealTiers();
  t.teardown(() => real.cleanup());
  const dataDir = await mkdtemp(join(tmpdir(), "eventide-pytail-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const env = { ...real.env, EVENTIDE_DATA_DIR: dataDir };
  const first = await spawnServer("server,persister,dispatcher", env);
  t.teardown(() => kill(first.child));
  const port = new URL(first.url).port;
  const turns = createClient(TurnService, createGrpcTransport({ baseUrl: first.url }));
  const threadId = (await turns.createThread({})).thread!.threadId;
  await appendN(createClient(EventService, createGrpcTransport({ baseUrl: first.url })), threadId, 30, "before");

  const total = 1 + 30 + 30 + 30;
  const probe = python(["tests/tail_probe.py", `127.0.0.1:${port}`, threadId, String(total)]);
  await probe.waitForLine((l) => l.seq === 31);
  await kill(first.child, "SIGKILL");
  await probe.waitForLine((l) => "reconnect" in l);

  // The same port: the client knows one address, as behind a load balancer.
  const second = await spawnServer("server,persister,dispatcher", { ...env, PORT: port });
  t.teardown(() => kill(second.child));
  const events = createClient(EventService, createGrpcTransport({ baseUrl: second.url }));
  await appendN(events, threadId, 30, "after");
  await probe.waitForLine((l) => l.seq === 61, 45_000);
  // Live events after the reconnect.
  await appendN(events, threadId, 30, "live");
  t.is(await probe.exit(), 0, probe.stderr());
  t.deepEqual(seqsOf(probe), range(1, total));
  t.true(probe.lines.some((l) => "reconnect" in l));
});

test.serial("the Python tail survives a dropped TCP connection: every seq once, in order", async (t) => {
  const proxy = new TcpProxy({ host: "127.0.0.1", port: server.port });
  await proxy.start();
  t.teardown(() => proxy.stop());
  const events = server.events();
  const threadId = (await server.turns().createThread({})).thread!.threadId;
  await appendN(events, threadId, 20, "a");
  const total = 1 + 20 + 20 + 20;
  const probe = python(["tests/tail_probe.py", `127.0.0.1:${proxy.port}`, threadId, String(total)]);
  await probe.waitForLine((l) => l.seq === 21);
  await proxy.cut();
  await probe.waitForLine((l) => "reconnect" in l);
  await appendN(events, threadId, 20, "b"); // written while the client cannot reach the server
  await proxy.restore();
  await probe.waitForLine((l) => l.seq === 41, 45_000);
  await appendN(events, threadId, 20, "c");
  t.is(await probe.exit(), 0, probe.stderr());
  t.deepEqual(seqsOf(probe), range(1, total));
});

test.serial("the Python client sends its API key; a wrong one ends the tail with UNAUTHENTICATED, without retrying", async (t) => {
  const keyed = await startTestServer("redis", { EVENTIDE_API_KEYS: "py-client-key:acme:client,py-admin-key:*:admin" });
  t.teardown(() => keyed.close());
  const threadId = (await clientsWithKey(keyed.baseUrl, "py-client-key").turns.createThread({})).thread!.threadId;
  await appendN(clientsWithKey(keyed.baseUrl, "py-admin-key").events, threadId, 5, "k");
  const probe = python(["tests/tail_probe.py", keyed.baseUrl, threadId, "6"], { EVENTIDE_API_KEY: "py-client-key" });
  t.is(await probe.exit(), 0, probe.stderr());
  t.deepEqual(seqsOf(probe), range(1, 6));

  const refused = python(["tests/tail_probe.py", keyed.baseUrl, threadId, "6"], { EVENTIDE_API_KEY: "not-a-key" });
  t.is(await refused.exit(), 1);
  t.like(refused.lines.at(-1), { code: "UNAUTHENTICATED" });
  t.false(refused.lines.some((l) => "reconnect" in l));
});

test.serial("run_agent: a turn longer than the lease completes once with coalesced deltas; a cancellation reaches the handler", async (t) => {
  const agent = python(["tests/agent_probe.py", server.baseUrl, "py-probe"]);
  await agent.waitForLine((l) => "ready" in l);

  // 250 tokens, 15 ms apart: about 4 s, twice the lease TTL; the runner coalesces for 30 ms.
  const tokens = Array.from({ length: 250 }, (_, i) => `t${i} `);
  const submitted = await server.turns().submitTurn({ input: { tokens, token_delay_ms: 15 } });
  const turnId = submitted.turn!.turnId;
  const threadId = submitted.thread!.threadId;
  const turn = await settled(turnId);
  t.is(turn.status, TurnStatus.COMPLETED);
  t.is(turn.attempt, 1, "the lease was renewed: no retry");
  t.deepEqual(turn.output, { text: tokens.join("") });

  const log = (await server.events().listEvents({ threadId, pageSize: 1000 })).events;
  t.deepEqual(log.map((e) => Number(e.seq)), range(1, log.length));
  t.false(log.some((e) => e.type === "turn.retrying"));
  t.is(log.filter((e) => e.type === "turn.completed").length, 1);
  const deltas = log.filter((e) => e.type === "message.delta");
  t.is(deltas.map((e) => (e.payload as { delta: string }).delta).join(""), tokens.join(""), "same text");
  const done = await agent.waitForLine((l) => l.done === turnId);
  t.true((done.appends as number) < tokens.length, `${done.appends} AppendEvents for ${tokens.length} tokens`);
  t.true(deltas.length < tokens.length);
  t.is(new Set(log.map((e) => e.eventId)).size, log.length);

  // Cancellation reaches the handler's signal.
  const waiting = await server.turns().submitTurn({ input: { wait_cancel: true } });
  const waitingId = waiting.turn!.turnId;
  await agent.waitForLine((l) => l.started === waitingId);
  await server.turns().cancelTurn({ turnId: waitingId });
  const cancelled = await agent.waitForLine((l) => l.cancelled === waitingId);
  t.is(cancelled.reason, "cancelled");
  t.is((await server.turns().getTurn({ turnId: waitingId })).turn!.status, TurnStatus.CANCELLED);

  // SIGTERM: the runner stops and returns.
  agent.child.kill("SIGTERM");
  await agent.waitForLine((l) => "stopped" in l);
  t.is(await agent.exit(), 0, agent.stderr());
});

test.serial("run_agent survives a SIGKILLed server mid-turn: the turn completes exactly once", async (t) => {
  t.timeout(150_000); // two server start-ups on a loaded machine
  const real = await openRealTiers();
  t.teardown(() => real.cleanup());
  const dataDir = await mkdtemp(join(tmpdir(), "eventide-pyagent-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const env = { ...real.env, EVENTIDE_DATA_DIR: dataDir, EVENTIDE_LEASE_TTL: "3s", EVENTIDE_LEASE_SWEEP: "100ms", EVENTIDE_RETRY_BACKOFF: "100ms" };
  const first = await spawnServer("server,persister,dispatcher", env);
  t.teardown(() => kill(first.child));
  const port = new URL(first.url).port;
  const agent = python(["tests/agent_probe.py", `127.0.0.1:${port}`, "py-restart"]);
  await agent.waitForLine((l) => "ready" in l);

  const turns = createClient(TurnService, createGrpcTransport({ baseUrl: first.url }));
  const tokens = Array.from({ length: 200 }, (_, i) => `w${i} `);
  const submitted = await turns.submitTurn({ input: { tokens, token_delay_ms: 20 } });
  const turnId = submitted.turn!.turnId;
  const threadId = submitted.thread!.threadId;
  // Mid-turn: some deltas are in the log (thread.created, turn.submitted, turn.started come first).
  for (const deadline = Date.now() + 30_000; (await turns.getThread({ threadId })).thread!.lastSeq < 5n; ) {
    if (Date.now() > deadline) throw new Error("the agent wrote no deltas");
    await delay(20);
  }
  await kill(first.child, "SIGKILL");

  const second = await spawnServer("server,persister,dispatcher", { ...env, PORT: port });
  t.teardown(() => kill(second.child));
  const after = createClient(TurnService, createGrpcTransport({ baseUrl: second.url }));
  const turn = await waitForTurnStatus({ turns: () => after }, turnId, TurnStatus.COMPLETED, 60_000);
  t.deepEqual(turn.output, { text: tokens.join("") });
  const log = (await createClient(EventService, createGrpcTransport({ baseUrl: second.url })).listEvents({ threadId, pageSize: 1000 })).events;
  t.deepEqual(log.map((e) => Number(e.seq)), range(1, log.length), "gapless");
  t.is(log.filter((e) => e.type === "turn.completed").length, 1, "completed exactly once");
  t.is(log.filter((e) => e.type === "message.completed").length, 1);
  agent.child.kill("SIGTERM");
  t.is(await agent.exit(), 0, agent.stderr());
});

test.serial("the example agent streams its reply onto a tail, and the README shows the same code", async (t) => {
  const example = python(["examples/echo_agent.py"], { EVENTIDE_URL: server.baseUrl });
  await example.waitForLine((l) => typeof l.text === "string" && l.text.includes("echo agent running"));
  const submitted = await server.turns().submitTurn({ input: { text: "hello from python" } });
  const threadId = submitted.thread!.threadId;
  const items = await collectTail(
    (signal) => server.events().tailEvents({ threadId, afterSeq: 0n, follow: true }, { signal }),
    (seen) => seen.some((r) => r.item.case === "event" && r.item.value.type === "turn.completed"),
    60_000,
  );
  const log = items.flatMap((r) => (r.item.case === "event" ? [r.item.value] : []));
  const deltas = log.filter((e) => e.type === "message.delta").map((e) => (e.payload as { delta: string }).delta);
  t.true(deltas.length > 1, "the reply streamed in pieces");
  t.is(deltas.join(""), "You said: hello from python");
  t.truthy(log.find((e) => e.type === "message.completed"));
  t.deepEqual(log.find((e) => e.type === "turn.completed")?.payload, { output: { text: "You said: hello from python" }, attempt: 1 });

  const code = await readFile(join(pythonClientDir, "examples/echo_agent.py"), "utf8");
  const snippet = code.slice(code.indexOf("import os"));
  for (const readme of [join(pythonClientDir, "README.md"), join(pythonClientDir, "../../README.md")]) {
    t.true((await readFile(readme, "utf8")).includes(snippet), `${readme} shows examples/echo_agent.py as it is`);
  }
});
