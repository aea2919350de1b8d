// Health on the main port: HTTP /healthz and /readyz (HTTP/1.1 and HTTP/2, no
// auth), readiness that follows the tiers, and what a shutting-down server says.
// Serial: an embedded (PGlite) server starting in this process blocks its event
// loop for a while, which would make another test's tier pings time out.
import test from "ava";
import { randomUUID } from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { startServer } from "../../server/app.js";
import { loadConfig } from "../../server/config.js";
import { buildCore } from "../../server/core.js";
import { Readiness, withProbes } from "../../server/health-probes.js";
import { HealthStatus } from "../../server/services/health-service.js";
import { checkTiers, inMemory, openTiers, type TierReadiness } from "../../server/tiers/open-tiers.js";
import type { PostgresWarmStore } from "../../server/tiers/warm/postgres/postgres-warm-store.js";
import { databaseUrl } from "../support/postgres.js";
import { deletePrefix, redisUrl } from "../support/redis.js";
import { startTestServer } from "../support/server.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { setTimeout as delay } from "node:timers/promises";

interface Probe {
  status: number;
  body: string;
}

function getHttp1(url: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, body }));
      })
      .on("error", reject);
  });
}

function getHttp2(origin: string, path: string): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin);
    session.on("error", reject);
    const req = session.request({ ":path": path });
    let status = 0;
    let body = "";
    req.setEncoding("utf8");
    req.on("response", (headers) => (status = Number(headers[":status"])));
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      session.close();
      resolve({ status, body });
    });
    req.on("error", reject);
    req.end();
  });
}

async function waitFor<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  let last: T | undefined;
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    last = await read();
    if (done(last)) return last;
    await delay(100);
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}

test.serial("/healthz and /readyz answer over HTTP/1.1 and HTTP/2, with no key on a server that requires one", async (t) => {
  const server = await startTestServer("memory", { EVENTIDE_API_KEYS: "probe-test-key:acme:client" });
  t.teardown(() => server.close());
  const anonymous = createClient(TurnService, server.transport("grpc"));
  const refused = await t.throwsAsync(anonymous.createThread({}));
  t.is(ConnectError.from(refused).code, Code.Unauthenticated, "auth is on for the RPCs");

  for (const [protocol, get] of [
    ["HTTP/1.1", (path: string) => getHttp1(`${server.baseUrl}${path}`)],
    ["HTTP/2", (path: string) => getHttp2(server.baseUrl, path)],
  ] as const) {
    const live = await get("/healthz");
    t.is(live.status, 200, protocol);
    t.deepEqual(JSON.parse(live.body), { status: "ok" }, protocol);
    const ready = await get("/readyz?verbose=1");
    t.is(ready.status, 200, protocol);
    t.deepEqual(JSON.parse(ready.body), { status: "ready", tiers: { hot: "ok", warm: "ok", cold: "ok" } }, protocol);
  }
  const head = await fetch(`${server.baseUrl}/readyz`, { method: "HEAD" });
  t.is(head.status, 200);
  const post = await fetch(`${server.baseUrl}/healthz`, { method: "POST" });
  t.is(post.status, 405);
  t.is(post.headers.get("allow"), "GET, HEAD");
});

test.serial("/readyz is 503 naming the tier while Redis or Postgres is unreachable, 200 again after; gRPC health of the services follows", async (t) => {
  const redisTarget = new URL(redisUrl);
  const pgTarget = new URL(databaseUrl);
  const redisProxy = new TcpProxy({ host: redisTarget.hostname, port: Number(redisTarget.port || 6379) });
  const pgProxy = new TcpProxy({ host: pgTarget.hostname, port: Number(pgTarget.port || 5432) });
  await redisProxy.start();
  await pgProxy.start();
  t.teardown(() => redisProxy.stop());
  t.teardown(() => pgProxy.stop());
  const viaRedisProxy = new URL(redisUrl);
  viaRedisProxy.port = String(redisProxy.port);
  const viaPgProxy = new URL(databaseUrl);
  viaPgProxy.port = String(pgProxy.port);
  const id = randomUUID().slice(0, 8);
  const config = loadConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    REDIS_URL: viaRedisProxy.toString(),
    EVENTIDE_REDIS_PREFIX: `ettest-${id}`,
    DATABASE_URL: viaPgProxy.toString(),
    EVENTIDE_PG_SCHEMA: `ettest_${id}`,
    EVENTIDE_DATA_DIR: inMemory,
    EVENTIDE_PARTITIONS: "4",
    EVENTIDE_ROLES: "server",
  });
  const log = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const tiers = await openTiers(config, log);
  const server = await startServer(config, buildCore(config, tiers, log), log, tiers);
  const cut = new Set<TcpProxy>();
  t.teardown(async () => {
    await server.close();
    for (const proxy of cut) await proxy.restore();
    await (tiers.warm as PostgresWarmStore).db.none("DROP SCHEMA IF EXISTS $1:name CASCADE", [config.pgSchema]);
    await tiers.close();
    await deletePrefix(config.redisPrefix);
  });
  const base = `http://127.0.0.1:${server.port}`;
  const readyz = async () => {
    const probe = await getHttp1(`${base}/readyz`);
    return { http: probe.status, ...(JSON.parse(probe.body) as { status: string; tiers: Record<string, string> }) };
  };
  const down = async (proxy: TcpProxy) => {
    cut.add(proxy);
    await proxy.cut();
  };
  const up = async (proxy: TcpProxy) => {
    await proxy.restore();
    cut.delete(proxy);
  };
  const health = createClient(Health, createGrpcTransport({ baseUrl: base }));
  const eventServiceHealth = async () => (await health.check({ service: EventService.typeName })).status;

  t.like(await readyz(), { http: 200, tiers: { hot: "ok", warm: "ok", cold: "ok" } });

  await down(redisProxy);
  const redisDown = await waitFor("503", readyz, (r) => r.http === 503);
  t.like(redisDown, { status: "not ready", tiers: { hot: "unreachable", warm: "ok", cold: "ok" } });
  t.is(await eventServiceHealth(), ServingStatus.NOT_SERVING);
  t.is((await health.check({ service: "" })).status, ServingStatus.SERVING, "the server as a whole stays live");
  await up(redisProxy);
  t.like(await waitFor("200", readyz, (r) => r.http === 200), { status: "ready", tiers: { hot: "ok" } });
  t.is(await eventServiceHealth(), ServingStatus.SERVING);

  await down(pgProxy);
  const pgDown = await waitFor("503", readyz, (r) => r.http === 503);
  t.like(pgDown, { tiers: { hot: "ok", warm: "unreachable" } });
  await up(pgProxy);
  await waitFor("200", readyz, (r) => r.http === 200);
});

test.serial("a tier that does not answer is reported as a timeout, within the bound", async (t) => {
  const started = Date.now();
  const result = await checkTiers({ hot: { ping: () => new Promise(() => {}) }, warm: { ping: async () => {} } }, 100);
  t.true(Date.now() - started < 1_000);
  t.like(result, { ready: false, tiers: { hot: { state: "timeout" }, warm: { state: "ok" } } });
});

test.serial("shutting down: /readyz 503, health NOT_SERVING, Watch and tails end with UNAVAILABLE", async (t) => {
  // The probe handler alone: a draining server's listener takes no new connections to ask it.
  const health = new HealthStatus();
  const ready: TierReadiness = { ready: true, tiers: { hot: { state: "ok" } } };
  const readiness = new Readiness({ checkTiers: async () => ready, health, services: [], log: pino({ level: "silent" }) });
  const probes = http.createServer(withProbes(readiness, health, (_req, res) => res.end()) as http.RequestListener);
  await new Promise<void>((resolve) => probes.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => probes.close(() => resolve())));
  const probeUrl = `http://127.0.0.1:${(probes.address() as { port: number }).port}`;
  t.is((await getHttp1(`${probeUrl}/readyz`)).status, 200);
  health.markShuttingDown();
  const draining = await getHttp1(`${probeUrl}/readyz`);
  t.is(draining.status, 503);
  t.like(JSON.parse(draining.body), { status: "shutting down" });
  t.is((await getHttp1(`${probeUrl}/healthz`)).status, 200, "still live while draining");

  // A whole server: a Watch and a followed tail are open when it shuts down.
  const server = await startTestServer("memory");
  let closed = false;
  t.teardown(() => (closed ? undefined : server.close()));
  const { thread } = await server.turns().createThread({});
  const watch = createClient(Health, server.transport("grpc")).watch({ service: "" });
  const statuses: ServingStatus[] = [];
  const watching = (async () => {
    for await (const res of watch) statuses.push(res.status);
  })().then(
    () => undefined,
    (err) => ConnectError.from(err),
  );
  const tail = server.events().tailEvents({ threadId: thread!.threadId, follow: true });
  let caughtUp = () => {};
  const isCaughtUp = new Promise<void>((resolve) => (caughtUp = resolve));
  const tailing = (async () => {
    for await (const res of tail) if (res.item.case === "caughtUp") caughtUp();
  })().then(
    () => undefined,
    (err) => ConnectError.from(err),
  );
  await isCaughtUp;
  await waitFor("the watch", async () => statuses.length, (n) => n > 0);
  const closing = Date.now();
  closed = true;
  await server.close();
  t.true(Date.now() - closing < 1_500, "open streams do not hold the drain");
  const tailEnd = await tailing;
  t.is(tailEnd?.code, Code.Unavailable);
  t.regex(tailEnd!.rawMessage, /shutting down; resume from your last seq/);
  const watchEnd = await watching;
  t.is(watchEnd?.code, Code.Unavailable);
  t.deepEqual(statuses, [ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
});
