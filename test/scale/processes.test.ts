// Several eventide processes on the same tiers, as a deployment runs them:
// 2 servers, 2 persisters, an archiver, a dispatcher and an agent, each its own
// OS process, on the machine's Redis (own key prefix), Postgres (own schema)
// and an s3rver. Appends go through both servers and every thread is tailed on
// both; mid-load a persister is SIGKILLed (and started again) and a server is
// SIGKILLed and started again on its port. Afterwards every thread is 1..N,
// each seq once, in Postgres and in every tail, and a turn submitted on one
// server ran on the agent connected to the other.
//
// It runs on each hot tier of hotTiers below: the machine's Redis, and a
// local Redis Cluster of its own.
import { createServer } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import test, { type ExecutionContext } from "ava";
import { type ChildProcess } from "node:child_process";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { exited, kill, spawnRole, spawnServer, type ServerChild } from "../support/child.js";
import { redisUrl } from "../support/redis.js";
import { startRedisCluster } from "../support/redis-cluster.js";
import { s3Credentials, startS3 } from "../support/s3.js";
import { expectPersistedOnce, openRealTiers, type RealTiers } from "../support/tiers.js";

/**
 * How each hot tier is reached: the env every process gets (openRealTiers adds the key prefix,
 * the schema and REDIS_URL of the machine's Redis; a Cluster entry sets REDIS_URL: "" beside its
 * own settings).
 */
const hotTiers: Record<string, (t: ExecutionContext) => Promise<Record<string, string>>> = {
  "redis (single node)": async () => ({ REDIS_URL: redisUrl }),
  "redis cluster (3 masters, 3 replicas)": async (t) => {
    const cluster = await startRedisCluster();
    t.teardown(() => cluster.stop());
    return { REDIS_URL: "", REDIS_CLUSTER_NODES: cluster.seeds };
  },
};

const loadThreads = 6;
/** Generous: seven Node processes start and run on a loaded two-core machine. */
const testTimeoutMs = 300_000;

for (const [hotName, hotEnv] of Object.entries(hotTiers)) {
  test(`${hotName}: 2 servers, 2 persisters, archiver, dispatcher and agent as processes: every thread 1..N once, in Postgres and every tail`, async (t) => {
    t.timeout(testTimeoutMs);
    await runDeployment(t, await hotEnv(t));
  });
}

interface Server {
  /** Fixed, so a restarted server is found where it was. */
  port: number;
  url: string;
  running?: ServerChild;
  turns: Client<typeof TurnService>;
  events: Client<typeof EventService>;
}

async function runDeployment(t: ExecutionContext, hotEnv: Record<string, string>): Promise<void> {
  const s3 = await startS3();
  t.teardown(() => s3.stop());
  const real = await openRealTiers({
    ...hotEnv,
    S3_ENDPOINT: s3.endpoint,
    S3_BUCKET: s3.bucket,
    S3_ACCESS_KEY_ID: s3Credentials.accessKeyId,
    S3_SECRET_ACCESS_KEY: s3Credentials.secretAccessKey,
    // The archiver scans every second; events stay in Postgres (archived after the default 7 days).
    EVENTIDE_ARCHIVE_INTERVAL: "1s",
    EVENTIDE_LEASE_SWEEP: "200ms",
    EVENTIDE_AGENT_TOKEN_DELAY: "5ms",
    EVENTIDE_HEARTBEAT_MS: "1000",
    EVENTIDE_SHUTDOWN_TIMEOUT: "5s",
  });
  t.teardown(() => real.cleanup());

  const children = new Set<ChildProcess>();
  const started = <T extends ChildProcess>(child: T) => {
    children.add(child);
    void exited(child).then(() => children.delete(child));
    return child;
  };
  t.teardown(async () => {
    for (const child of children) await kill(child);
  });

  const servers: Server[] = [];
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const transport = createGrpcTransport({ baseUrl: url });
    servers.push({ port, url, turns: createClient(TurnService, transport), events: createClient(EventService, transport) });
  }
  const startServerProcess = async (s: Server) => {
    s.running = await spawnServer("server", { ...real.env, PORT: String(s.port) }, 120_000);
    started(s.running.child);
  };
  // The first server migrates the schema (openRealTiers did already); the rest start together.
  await Promise.all(servers.map(startServerProcess));
  const persisters = [started(spawnRole("persister", real.env)), started(spawnRole("persister", real.env))];
  started(spawnRole("archiver", real.env));
  started(spawnRole("dispatcher", real.env));
  // The agent's feed is on server B only: turns submitted on server A reach it through Redis.
  started(spawnRole("agent", { ...real.env, EVENTIDE_AGENT_URL: servers[1].url, EVENTIDE_AGENT_ID: "agent-on-b" }));
  const [a, b] = servers;

  const threadIds: string[] = [];
  for (let i = 0; i < loadThreads; i++) {
    const { thread } = await servers[i % 2].turns.createThread({});
    threadIds.push(thread!.threadId);
  }

  const stopTails = new AbortController();
  t.teardown(() => stopTails.abort());
  /** Per server, per thread: every seq its tail delivered, in order. */
  const tails = servers.map((s) => threadIds.map((threadId) => followTail(s, threadId, stopTails.signal)));

  let loading = true;
  t.teardown(() => {
    loading = false;
  });
  let appended = 0;
  const appenders = threadIds.map(async (threadId, i) => {
    for (let n = i; loading; n++) {
      const events = Array.from({ length: 1 + (n % 5) }, (_, k) => ({ type: "message.delta", payload: { n, k } }));
      // Each append through the next server; while one is down, through the other.
      for (let attempt = 0; ; attempt++) {
        const server = servers[(n + attempt) % 2];
        try {
          await server.events.appendEvents({ threadId, events }, { timeoutMs: 30_000 });
          appended += events.length;
          break;
        } catch (err) {
          if (attempt > 200) throw err;
          await delay(50);
        }
      }
      await delay(20);
    }
  });

  const untilAppended = async (count: number) => {
    for (const deadline = Date.now() + 120_000; appended < count; ) {
      if (Date.now() > deadline) throw new Error(`only ${appended} events appended, waiting for ${count}`);
      await delay(100);
    }
  };

  // A persister dies mid-batch and comes back.
  await untilAppended(300);
  await kill(persisters[0]);
  t.is(persisters[0].signalCode, "SIGKILL");
  await untilAppended(appended + 300);
  started(spawnRole("persister", real.env));

  // Server A dies under load and is started again on its port; tails on it reconnect.
  await untilAppended(appended + 300);
  await kill(a.running!.child);
  await untilAppended(appended + 200); // through B alone
  await startServerProcess(a);
  await untilAppended(appended + 300);

  // A turn submitted on A runs on the agent whose feed is on B.
  const { thread: turnThread, turn } = await a.turns.submitTurn({ input: { text: "across servers" } });
  let done;
  for (const deadline = Date.now() + 120_000; ; ) {
    done = (await a.turns.getTurn({ turnId: turn!.turnId })).turn!;
    if (done.status === TurnStatus.COMPLETED || Date.now() > deadline) break;
    await delay(200);
  }
  t.like(done, { status: TurnStatus.COMPLETED, agentId: "agent-on-b", attempt: 1 });

  loading = false;
  await Promise.all(appenders);

  // What the hot tier acknowledged is the truth each place must hold exactly.
  const expected = new Map<string, number>();
  for (const id of [...threadIds, turnThread!.threadId]) expected.set(id, (await real.tiers.hot.getThread(id))!.lastSeq);
  const total = await expectPersistedOnce(t, real, expected, 180_000);
  t.true(total >= 1_500, `${total} events persisted`);

  for (const [s, byThread] of tails.entries()) {
    for (const [i, tail] of byThread.entries()) {
      const n = expected.get(threadIds[i])!;
      await tail.until(n, 120_000);
      t.deepEqual(tail.seqs, Array.from({ length: n }, (_, k) => k + 1), `server ${"AB"[s]}'s tail of thread ${i}: 1..${n}, each once`);
    }
  }
  t.true(tails[0].some((tail) => tail.reconnects > 0), "tails on the restarted server reconnected");
  stopTails.abort();
  await Promise.all(tails.flat().map((tail) => tail.done));
}

interface FollowedTail {
  seqs: number[];
  reconnects: number;
  /** Resolves once the tail delivered seq n; rejects after timeoutMs. */
  until(n: number, timeoutMs: number): Promise<void>;
  done: Promise<void>;
}

/** A followed tail that resumes after its last seq whenever its stream drops (its server restarted). */
function followTail(server: Server, threadId: string, signal: AbortSignal): FollowedTail {
  const tail: FollowedTail = {
    seqs: [],
    reconnects: 0,
    async until(n, timeoutMs) {
      for (const deadline = Date.now() + timeoutMs; (tail.seqs.at(-1) ?? 0) < n; ) {
        if (Date.now() > deadline) throw new Error(`tail of ${threadId} on ${server.url} reached ${tail.seqs.at(-1)}, not ${n}`);
        await delay(100);
      }
    },
    done: Promise.resolve(),
  };
  tail.done = (async () => {
    while (!signal.aborted) {
      try {
        const after = BigInt(tail.seqs.at(-1) ?? 0);
        for await (const res of server.events.tailEvents({ threadId, afterSeq: after, follow: true }, { signal })) {
          if (res.item.case === "event") tail.seqs.push(Number(res.item.value.seq));
        }
      } catch {
        // Dropped (server gone) or refused (server starting): resume after what arrived.
      }
      if (signal.aborted) break;
      tail.reconnects++;
      await delay(200, undefined, { signal }).catch(() => {});
    }
  })();
  return tail;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
