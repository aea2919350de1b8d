// A real eventide server on a free loopback port, on the memory tier or on the
// machine's Redis (own key prefix), with typed clients for each protocol.
import type { TestFn } from "ava";
import { randomUUID } from "node:crypto";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { type Logger, pino } from "pino";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { type Turn, TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { startServer } from "../../server/app.js";
import { loadConfig } from "../../server/config.js";
import { buildCore, type Core } from "../../server/core.js";
import { startArchiver, startDispatcher, startPersister, startReferenceAgent } from "../../server/roles.js";
import { inMemory, openTiers, type Tiers } from "../../server/tiers/open-tiers.js";
import type { PostgresWarmStore } from "../../server/tiers/warm/postgres/postgres-warm-store.js";
import { databaseUrl } from "./postgres.js";
import { deletePrefix, redisUrl } from "./redis.js";
import { s3Credentials, startS3 } from "./s3.js";
import { setTimeout as delay } from "node:timers/promises";

export type TierKind = "memory" | "redis" | "redis-cluster";
/** The kinds every server test runs on ("redis-cluster" needs a cluster the test starts: see redis-cluster.ts). */
export const tierKinds: TierKind[] = ["memory", "redis"];
export type Protocol = "connect" | "grpc" | "grpc-web" | "connect-http1";
export const protocols: Protocol[] = ["connect", "grpc", "grpc-web", "connect-http1"];

export interface TestServer {
  baseUrl: string;
  port: number;
  tiers: Tiers;
  core: Core;
  transport(protocol: Protocol): Transport;
  turns(protocol?: Protocol): Client<typeof TurnService>;
  events(protocol?: Protocol): Client<typeof EventService>;
  close(): Promise<void>;
}

/**
 * "memory": the embedded tiers (memory hot, in-memory PGlite warm, a directory cold store).
 * "redis": the machine's Redis and Postgres, under a key prefix and a schema of its own,
 * and an in-process S3 server (s3rver) as the cold tier.
 * "redis-cluster": the same, with the hot tier on the Redis Cluster that env's
 * REDIS_CLUSTER_NODES names (test/support/redis-cluster.ts starts one).
 * A persister and the lease sweeper run in-process unless EVENTIDE_ROLES says otherwise;
 * the archiver and the reference agent only when it names them.
 */
export async function startTestServer(tier: TierKind, env: Record<string, string> = {}, options: { log?: Logger } = {}): Promise<TestServer> {
  const id = randomUUID().slice(0, 8);
  const real = tier !== "memory";
  if (tier === "redis-cluster" && !env.REDIS_CLUSTER_NODES) throw new Error("a redis-cluster test server needs REDIS_CLUSTER_NODES");
  const s3 = real ? await startS3() : undefined;
  const prefix = `ettest-${id}`;
  const schema = `ettest_${id}`;
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    EVENTIDE_PARTITIONS: "4",
    EVENTIDE_PERSIST_LEASE_MS: "1000",
    ...(real
      ? {
          REDIS_URL: tier === "redis" ? redisUrl : "",
          EVENTIDE_REDIS_PREFIX: prefix,
          DATABASE_URL: databaseUrl,
          EVENTIDE_PG_SCHEMA: schema,
          S3_ENDPOINT: s3!.endpoint,
          S3_BUCKET: s3!.bucket,
          S3_ACCESS_KEY_ID: s3Credentials.accessKeyId,
          S3_SECRET_ACCESS_KEY: s3Credentials.secretAccessKey,
        }
      : { EVENTIDE_DATA_DIR: inMemory }),
    ...env,
  });
  const log = options.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const tiers = await openTiers(config, log);
  const workers = new AbortController();
  const core = buildCore(config, tiers, log);
  const persisting = config.roles.includes("persister") ? startPersister(config, tiers, log, workers.signal, core) : Promise.resolve();
  const archiving = config.roles.includes("archiver") && env.EVENTIDE_ROLES ? startArchiver(core, workers.signal) : Promise.resolve();
  const dispatching = config.roles.includes("dispatcher") ? startDispatcher(config, core, log, workers.signal) : Promise.resolve();
  const server = await startServer(config, core, log, tiers);
  const baseUrl = `http://127.0.0.1:${server.port}`;
  // Like the archiver, the reference agent runs only when a test names it.
  const agent = config.roles.includes("agent") && env.EVENTIDE_ROLES ? startReferenceAgent(config, baseUrl, log, workers.signal) : Promise.resolve();
  const transports = new Map<Protocol, Transport>();
  const transport = (protocol: Protocol) => {
    let t = transports.get(protocol);
    if (!t) {
      t = makeTransport(protocol, baseUrl);
      transports.set(protocol, t);
    }
    return t;
  };
  return {
    baseUrl,
    port: server.port,
    tiers,
    core,
    transport,
    turns: (protocol = "grpc") => createClient(TurnService, transport(protocol)),
    events: (protocol = "grpc") => createClient(EventService, transport(protocol)),
    async close() {
      workers.abort();
      await agent;
      await server.close();
      await persisting;
      await archiving;
      await dispatching;
      if (real) await (tiers.warm as PostgresWarmStore).db.none("DROP SCHEMA IF EXISTS $1:name CASCADE", [schema]);
      await tiers.close();
      // A cluster is the test's own and goes with its keys.
      if (tier === "redis") await deletePrefix(prefix);
      await s3?.stop();
    },
  };
}

function makeTransport(protocol: Protocol, baseUrl: string): Transport {
  switch (protocol) {
    case "grpc":
      return createGrpcTransport({ baseUrl });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "2" });
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion: "2" });
    case "connect-http1":
      return createConnectTransport({ baseUrl, httpVersion: "1.1" });
  }
}

/** Collects a tail until `stop` says so (or the stream ends), then cancels it. */
export async function collectTail<T>(
  stream: (signal: AbortSignal) => AsyncIterable<T>,
  stop: (items: T[]) => boolean,
  timeoutMs = 15_000,
): Promise<T[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const items: T[] = [];
  try {
    for await (const item of stream(controller.signal)) {
      items.push(item);
      if (stop(items)) break;
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return items;
}

/** Waits until the persister has committed the thread through `seq`. */
export async function waitPersisted(server: Pick<TestServer, "tiers">, threadId: string, seq: number, timeoutMs = 30_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    if (((await server.tiers.warm.getThread(threadId))?.lastSeq ?? 0) >= seq) return;
    await delay(25);
  }
  throw new Error(`thread ${threadId} not persisted through ${seq}`);
}

/** Waits until the turn has `status`; its record then. */
export async function waitForTurnStatus(server: Pick<TestServer, "turns">, turnId: string, status: TurnStatus, timeoutMs = 15_000): Promise<Turn> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { turn } = await server.turns().getTurn({ turnId });
    if (turn!.status === status) return turn!;
    if (Date.now() > deadline) throw new Error(`turn ${turnId} is ${TurnStatus[turn!.status]}, not ${TurnStatus[status]}`);
    await delay(25);
  }
}

/** One server per tier for a whole test file: started before its tests, closed after. */
export function serverPerTier(test: TestFn, env: Record<string, string> = {}): Map<TierKind, TestServer> {
  const servers = new Map<TierKind, TestServer>();
  test.before(async () => {
    for (const tier of tierKinds) servers.set(tier, await startTestServer(tier, env));
  });
  test.after.always(async () => {
    for (const s of servers.values()) await s.close();
  });
  return servers;
}
