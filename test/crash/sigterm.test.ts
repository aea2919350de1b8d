// A server process (server, persister, dispatcher on the machine's Redis and
// Postgres) gets SIGTERM mid-traffic: tails following, appenders appending with
// their own event ids, an agent feed holding a turn. It must end the tails with
// UNAVAILABLE, requeue the held turn at once, finish what it acknowledged, and
// exit 0 within EVENTIDE_SHUTDOWN_TIMEOUT. After a restart every acknowledged
// append is in the log exactly once and the tails resume with no gap and no
// duplicate.
import test from "ava";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AgentService, type TurnAssignment } from "../../gen/eventide/v1/agent_service_pb.js";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { connectRedis } from "../support/redis.js";
import { exited, kill, spawnRole, spawnServer, type ServerChild } from "../support/child.js";
import { openRealTiers } from "../support/tiers.js";
import { setTimeout as delay } from "node:timers/promises";

const roles = "server,persister,dispatcher";
const threadCount = 3;
const shutdownTimeoutMs = 10_000;

/** One append call: its client-chosen event ids, and what came of it. */
interface Batch {
  threadId: string;
  eventIds: string[];
  acked?: { firstSeq: number; lastSeq: number };
  failedWith?: Code;
  failure?: string;
}

const codeOf = (err: unknown) => ConnectError.from(err).code;

// Serial: each test starts server processes, and two at once on a loaded machine crawl.

test.serial("SIGTERM mid-traffic: tails end UNAVAILABLE, the held turn is requeued at once, exit 0 in time, every acknowledged append exactly once after a restart", async (t) => {
  const real = await openRealTiers();
  t.teardown(() => real.cleanup());
  const dataDir = await mkdtemp(join(tmpdir(), "eventide-sigterm-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  // A lease far longer than the test: a requeue seen within it came from the shutdown, not the sweeper.
  const env = { ...real.env, EVENTIDE_DATA_DIR: dataDir, EVENTIDE_LEASE_TTL: "120s", EVENTIDE_SHUTDOWN_TIMEOUT: `${shutdownTimeoutMs}ms` };
  const first = await spawnServer(roles, env);
  t.teardown(() => kill(first.child));
  const transport = createGrpcTransport({ baseUrl: first.url });
  const turns = createClient(TurnService, transport);
  const events = createClient(EventService, transport);

  const threadIds: string[] = [];
  for (let i = 0; i < threadCount; i++) threadIds.push((await turns.createThread({})).thread!.threadId);

  // An agent holds a turn of its own thread (it never completes it).
  const feedAbort = new AbortController();
  t.teardown(() => feedAbort.abort());
  const feed = createClient(AgentService, transport).receiveTurns({ agentId: "holder", maxInFlight: 1 }, { signal: feedAbort.signal });
  let assigned: (a: TurnAssignment) => void = () => {};
  const assignment = new Promise<TurnAssignment>((resolve) => (assigned = resolve));
  const feedEnd = (async () => {
    for await (const res of feed) if (res.item.case === "assignment") assigned(res.item.value);
  })().then(
    () => "ended without an error",
    (err) => codeOf(err),
  );
  const held = await turns.submitTurn({ input: { text: "hold me" } });
  const heldThreadId = held.thread!.threadId;
  t.is((await assignment).turn!.turnId, held.turn!.turnId);

  // A following tail per thread, recording the seqs it sees.
  const seen = new Map<string, number[]>(threadIds.map((id) => [id, []]));
  const tailEnds = threadIds.map((threadId) => followTail(createClient(EventService, transport), threadId, 0, seen.get(threadId)!, t));

  // Appenders: batches of 1-3 events with ids of their own, until the server goes.
  const batches: Batch[] = [];
  let sigtermAt = 0;
  const appenders = threadIds.map(async (threadId, i) => {
    for (let n = 0; ; n++) {
      const batch: Batch = { threadId, eventIds: Array.from({ length: 1 + ((n + i) % 3) }, (_, k) => `a${i}-${n}-${k}`) };
      batches.push(batch);
      try {
        const res = await events.appendEvents({ threadId, events: batch.eventIds.map((eventId) => ({ eventId, type: "message.delta", payload: { n } })) });
        batch.acked = { firstSeq: Number(res.firstSeq), lastSeq: Number(res.lastSeq) };
      } catch (err) {
        batch.failedWith = codeOf(err);
        batch.failure = `${ConnectError.from(err).message} (${String((err as Error).cause ?? "")})`;
        if (sigtermAt === 0) throw err;
        return;
      }
    }
  });
  for (const deadline = Date.now() + 20_000; batches.filter((b) => b.acked).length < 150 && Date.now() < deadline; ) {
    await delay(20);
  }

  sigtermAt = Date.now();
  first.child.kill("SIGTERM");
  await exited(first.child);
  const stoppedInMs = Date.now() - sigtermAt;
  await Promise.all(appenders);

  t.is(first.child.exitCode, 0, first.output().slice(-3000));
  t.true(stoppedInMs < shutdownTimeoutMs, `stopped in ${stoppedInMs} ms`);
  t.deepEqual(await Promise.all(tailEnds), threadIds.map(() => Code.Unavailable), "every tail ended with UNAVAILABLE");
  t.is(await feedEnd, Code.Unavailable, "the agent feed ended with UNAVAILABLE");
  const failures = batches.filter((b) => b.failedWith !== undefined);
  t.true(failures.length >= threadCount, "each appender saw the server go");
  // An append either finished, or failed UNAVAILABLE (no server to take it), or was refused
  // unprocessed at the GOAWAY (HTTP/2 REFUSED_STREAM, which connect-node 2.1 reports as INTERNAL).
  const notProcessed = (b: Batch) => b.failedWith === Code.Unavailable || (b.failedWith === Code.Internal && /REFUSED_STREAM/.test(b.failure!));
  t.true(failures.every(notProcessed), `appends fail only as not processed: ${failures.map((b) => b.failure).join("; ")}`);
  t.true(batches.filter((b) => b.acked).length >= 150, `${batches.filter((b) => b.acked).length} appends acknowledged`);
  t.log(`${batches.filter((b) => b.acked).length} appends acknowledged, ${failures.length} failed (${failures.map((b) => Code[b.failedWith!]).join(", ")}), stopped in ${stoppedInMs} ms`);

  // The held turn went back to the queue as the feed closed, not when its lease (120 s) lapsed.
  const heldLog = await real.log.read(heldThreadId, 0, 1000);
  const retrying = heldLog.find((e) => e.type === "turn.retrying");
  t.truthy(retrying, `turn.retrying in ${heldLog.map((e) => e.type).join(", ")}`);
  t.true(retrying!.createdAt - sigtermAt < 5_000, "requeued within moments of SIGTERM");
  t.regex(String(retrying!.payload.error), /holder disconnected/);

  // The persister finished the batch in hand: nothing it read is left unacknowledged.
  t.is(await pendingEntries(real.env.EVENTIDE_REDIS_PREFIX, 4), 0, "no pending entries in the persister's consumer group");

  // Restart: failed appends are retried with the same ids, then every log holds each id once, seqs 1..N.
  const second = await spawnServer(roles, env);
  t.teardown(() => kill(second.child));
  const transport2 = createGrpcTransport({ baseUrl: second.url });
  const events2 = createClient(EventService, transport2);
  for (const batch of failures) {
    const res = await events2.appendEvents({ threadId: batch.threadId, events: batch.eventIds.map((eventId) => ({ eventId, type: "message.delta" })) });
    batch.acked = { firstSeq: Number(res.firstSeq), lastSeq: Number(res.lastSeq) };
  }
  for (const threadId of threadIds) {
    const log = (await events2.listEvents({ threadId, pageSize: 1000 })).events;
    t.deepEqual(log.map((e) => Number(e.seq)), log.map((_, i) => i + 1), `${threadId}: gapless seqs 1..N`);
    const ids = log.filter((e) => e.type === "message.delta").map((e) => e.eventId);
    t.is(new Set(ids).size, ids.length, `${threadId}: no event twice`);
    const expected = batches.filter((b) => b.threadId === threadId).flatMap((b) => b.eventIds);
    t.deepEqual([...ids].sort(), [...expected].sort(), `${threadId}: exactly the appended ids`);
    for (const b of batches.filter((b) => b.threadId === threadId)) {
      t.deepEqual(
        log.slice(b.acked!.firstSeq - 1, b.acked!.lastSeq).map((e) => e.eventId),
        b.eventIds,
        "each acknowledgement names the seqs the batch holds",
      );
    }
    // The tail resumes where it stood and sees the rest, each seq once.
    const before = seen.get(threadId)!;
    const after: number[] = [];
    await followTail(events2, threadId, before.at(-1) ?? 0, after, t, { untilCaughtUp: true });
    t.deepEqual([...before, ...after], log.map((e) => Number(e.seq)), `${threadId}: the resumed tail sees every event once`);
  }

  // The held turn runs again for the next agent that asks (attempt 2), with no lease to wait out.
  const next = await firstAssignment(transport2, "next-agent");
  t.is(next.turn!.turnId, held.turn!.turnId);
  t.is(next.attempt, 2);
  t.true(timestampMs(next.leaseExpiresAt!) > Date.now());

  second.child.kill("SIGTERM");
  await exited(second.child);
  t.is(second.child.exitCode, 0);
});

test.serial("a call that never finishes does not hold the shutdown past its bound", async (t) => {
  const real = await openRealTiers();
  t.teardown(() => real.cleanup());
  const dataDir = await mkdtemp(join(tmpdir(), "eventide-sigterm-"));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const server: ServerChild = await spawnServer("server", { ...real.env, EVENTIDE_DATA_DIR: dataDir, EVENTIDE_SHUTDOWN_TIMEOUT: "2s" });
  t.teardown(() => kill(server.child));
  // An HTTP/1.1 request whose body never fully arrives.
  const { port } = new URL(server.url);
  const socket = net.connect(Number(port), "127.0.0.1");
  t.teardown(() => socket.destroy());
  socket.on("error", () => {});
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write("POST /eventide.v1.TurnService/CreateThread HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{");
  await delay(300);

  const sigtermAt = Date.now();
  server.child.kill("SIGTERM");
  await exited(server.child);
  const stoppedInMs = Date.now() - sigtermAt;
  t.is(server.child.exitCode, 0);
  t.true(stoppedInMs < 2_500, `stopped in ${stoppedInMs} ms`);
  t.regex(server.output(), /connections still open after the grace period were dropped/);
});

test.serial("SIGTERM while the tiers open at start-up is not lost: the process stops once it is up, exit 0", async (t) => {
  const real = await openRealTiers();
  t.teardown(() => real.cleanup());
  // Postgres through a proxy that holds each connection until released, so the signal surely lands mid-open.
  const held = holdingProxy(new URL(real.env.DATABASE_URL));
  t.teardown(() => held.close());
  const databaseUrl = new URL(real.env.DATABASE_URL);
  databaseUrl.port = String(await held.port);
  const child = spawnRole("persister", { ...real.env, DATABASE_URL: databaseUrl.href, EVENTIDE_SHUTDOWN_TIMEOUT: "5s" });
  t.teardown(() => kill(child));
  await held.connected;
  child.kill("SIGTERM");
  await delay(300);
  held.release();
  const code = await Promise.race([exited(child).then(() => child.exitCode), delay(15_000).then(() => "still running 15 s after SIGTERM")]);
  t.is(code, 0);
});

/** A TCP proxy to `target` that holds every connection's bytes until release(); `connected` resolves at the first connection. */
function holdingProxy(target: URL) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let connected!: () => void;
  const firstConnection = new Promise<void>((resolve) => (connected = resolve));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    connected();
    client.pause();
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => (client.destroy(), upstream.destroy()));
    }
    void released.then(() => {
      client.pipe(upstream).pipe(client);
      client.resume();
    });
  });
  const port = new Promise<number>((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
  return {
    port,
    connected: firstConnection,
    release,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Follows a tail, pushing each event's seq; resolves with the code it ended with (undefined: ended cleanly). */
async function followTail(
  events: Client<typeof EventService>,
  threadId: string,
  afterSeq: number,
  seqs: number[],
  t: { teardown(fn: () => void): void },
  opts: { untilCaughtUp?: boolean } = {},
): Promise<Code | undefined> {
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  try {
    for await (const res of events.tailEvents({ threadId, afterSeq: BigInt(afterSeq), follow: true }, { signal: abort.signal })) {
      if (res.item.case === "event") seqs.push(Number(res.item.value.seq));
      if (res.item.case === "caughtUp" && opts.untilCaughtUp) return undefined;
    }
    return undefined;
  } catch (err) {
    return codeOf(err);
  } finally {
    abort.abort();
  }
}

async function firstAssignment(transport: Transport, agentId: string): Promise<TurnAssignment> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 15_000);
  try {
    for await (const res of createClient(AgentService, transport).receiveTurns({ agentId, maxInFlight: 1 }, { signal: abort.signal })) {
      if (res.item.case === "assignment") return res.item.value;
    }
    throw new Error("the feed ended without an assignment");
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/** Entries read by a persister and not acknowledged, over every partition log. */
async function pendingEntries(prefix: string, partitions: number): Promise<number> {
  const redis = await connectRedis();
  try {
    let pending = 0;
    for (let p = 0; p < partitions; p++) {
      try {
        pending += (await redis.xPending(`${prefix}:{${p}}:log`, "persister")).pending;
      } catch (err) {
        if (!String(err).includes("NOGROUP")) throw err;
      }
    }
    return pending;
  } finally {
    redis.destroy();
  }
}
