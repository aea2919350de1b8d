// TLS (TLS_CERT / TLS_KEY): one port serves HTTP/2 and HTTP/1.1 over TLS,
// chosen by ALPN. A self-signed certificate is made at test time with openssl.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http2 from "node:http2";
import https from "node:https";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { promisify } from "node:util";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { ConfigError, loadConfig } from "../../server/config.js";
import { listen } from "../../server/http-server.js";
import { kill, spawnServer } from "../support/child.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { closedWithin, rawSocket, receivedText } from "../support/sockets.js";
import { setTimeout as delay } from "node:timers/promises";

let dir: string;
let cert: string;
let tlsEnv: Record<string, string>;
let server: TestServer;
let httpsUrl: string;

/** A self-signed certificate for 127.0.0.1 (the IP in subjectAltName is what clients check). */
async function makeCertificate(into: string): Promise<void> {
  const args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"];
  args.push("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(into, "key.pem"), "-out", join(into, "cert.pem"));
  try {
    await promisify(execFile)("openssl", args, { timeout: 30_000 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error("the TLS tests need the openssl command to make a test certificate: install it (apt-get install openssl)");
    }
    throw err;
  }
}

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), "eventide-tls-"));
  await makeCertificate(dir);
  cert = await readFile(join(dir, "cert.pem"), "utf8");
  tlsEnv = { TLS_CERT: join(dir, "cert.pem"), TLS_KEY: join(dir, "key.pem") };
  server = await startTestServer("memory", tlsEnv);
  httpsUrl = `https://127.0.0.1:${server.port}`;
});
test.after.always(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("gRPC over TLS (HTTP/2): unary calls and a followed tail", async (t) => {
  const transport = createGrpcTransport({ baseUrl: httpsUrl, nodeOptions: { ca: cert } });
  const { thread } = await createClient(TurnService, transport).createThread({});
  const events = createClient(EventService, transport);
  await events.appendEvents({ threadId: thread!.threadId, events: [{ type: "message.delta", payload: { delta: "hi" } }] });
  const seqs: number[] = [];
  const controller = new AbortController();
  try {
    for await (const res of events.tailEvents({ threadId: thread!.threadId, follow: true }, { signal: controller.signal })) {
      if (res.item.case === "event") seqs.push(Number(res.item.value.seq));
      if (res.item.case === "caughtUp") break;
    }
  } finally {
    controller.abort();
  }
  t.deepEqual(seqs, [1, 2]);
});

test("Connect and gRPC-Web over TLS on HTTP/1.1, the browsers' way", async (t) => {
  const connect = createConnectTransport({ baseUrl: httpsUrl, httpVersion: "1.1", nodeOptions: { ca: cert } });
  const { thread } = await createClient(TurnService, connect).createThread({});
  const grpcWeb = createGrpcWebTransport({ baseUrl: httpsUrl, httpVersion: "1.1", nodeOptions: { ca: cert } });
  const got = await createClient(TurnService, grpcWeb).getThread({ threadId: thread!.threadId });
  t.is(got.thread!.lastSeq, 1n);
  // And a plain HTTPS request with no ALPN at all: served as HTTP/1.1.
  const status = await new Promise<number>((resolve, reject) => {
    https
      .get(`${httpsUrl}/healthz`, { ca: cert }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      })
      .on("error", reject);
  });
  t.is(status, 200);
});

test("ALPN negotiates h2 and http/1.1 on the same port", async (t) => {
  const negotiate = (protocols: string[]) =>
    new Promise<string | false>((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port: server.port, ca: cert, ALPNProtocols: protocols }, () => {
        resolve(socket.alpnProtocol ?? false);
        socket.end();
      });
      socket.on("error", reject);
    });
  t.is(await negotiate(["h2", "http/1.1"]), "h2");
  t.is(await negotiate(["http/1.1"]), "http/1.1");
});

test("cleartext clients and clients that do not trust the certificate fail", async (t) => {
  const cleartext = createClient(TurnService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` }));
  await t.throwsAsync(cleartext.createThread({}, { timeoutMs: 5_000 }));
  await t.throwsAsync(fetch(`http://127.0.0.1:${server.port}/healthz`, { signal: AbortSignal.timeout(5_000) }));
  const untrusting = createClient(TurnService, createGrpcTransport({ baseUrl: httpsUrl }));
  const err = await t.throwsAsync(untrusting.createThread({}, { timeoutMs: 5_000 }));
  t.regex(ConnectError.from(err).message, /self[- ]signed|certificate/i);
});

test("an unreadable TLS_CERT is a configuration error that names the setting", async (t) => {
  const tls = { certFile: join(dir, "missing.pem"), keyFile: tlsEnv.TLS_KEY };
  const err = await t.throwsAsync(listen(() => {}, { port: 0, host: "127.0.0.1", limits: loadConfig({}).connections, tls }));
  t.true(err instanceof ConfigError);
  t.regex(err!.message, /TLS_CERT .*missing\.pem/);
});

test("eventide with TLS as a process: https banner, and its reference agent trusts the self-signed cert", async (t) => {
  const child = await spawnServer("all", { ...tlsEnv, EVENTIDE_DATA_DIR: "memory:", EVENTIDE_AGENT_TOKEN_DELAY: "0" });
  t.teardown(() => kill(child.child));
  t.regex(child.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const turns = createClient(TurnService, createGrpcTransport({ baseUrl: child.url, nodeOptions: { ca: cert } }));
  const { turn } = await turns.submitTurn({ input: { text: "over tls" } });
  let status = TurnStatus.QUEUED;
  for (const deadline = Date.now() + 20_000; status !== TurnStatus.COMPLETED && Date.now() < deadline; ) {
    await delay(100);
    status = (await turns.getTurn({ turnId: turn!.turnId })).turn!.status;
  }
  t.is(status, TurnStatus.COMPLETED, "the reference agent ran the turn over TLS");
  const code = await new Promise<number | null>((resolve) => {
    child.child.once("exit", (c) => resolve(c));
    child.child.kill("SIGTERM");
  });
  t.is(code, 0);
  t.notRegex(child.output(), /reference agent lost its feed/);
});

test("TLS gets the same connection timeouts and limits as cleartext", async (t) => {
  const tight = await startTestServer("memory", {
    ...tlsEnv,
    EVENTIDE_HANDSHAKE_TIMEOUT: "300ms",
    EVENTIDE_HEADERS_TIMEOUT: "500ms",
    EVENTIDE_IDLE_TIMEOUT: "500ms",
    EVENTIDE_MAX_CONNECTIONS: "12",
    EVENTIDE_MAX_STREAMS_PER_CONNECTION: "4",
    EVENTIDE_HEARTBEAT_MS: "100",
  });
  t.teardown(() => tight.close());
  const waitMs = 30_000;
  const http1 = { ca: cert, ALPNProtocols: ["http/1.1"] };
  const healthz = "GET /healthz HTTP/1.1\r\nHost: eventide\r\n\r\n";

  // No ClientHello; a handshake and no request; headers that never end; a kept-alive connection after its answer.
  const silent = await rawSocket(tight.port);
  const noRequest = await rawSocket(tight.port, http1);
  const slowHeaders = await rawSocket(tight.port, http1);
  slowHeaders.write("GET /healthz HTTP/1.1\r\nHost: eventide\r\n");
  const dripping = setInterval(() => slowHeaders.write("X-Slow: still coming\r\n"), 100);
  t.teardown(() => clearInterval(dripping));
  const keptAlive = await rawSocket(tight.port, http1);
  keptAlive.write(healthz);
  await receivedText(keptAlive, "200 OK", waitMs);
  await Promise.all([
    closedWithin(silent, waitMs, "no ClientHello"),
    closedWithin(noRequest, waitMs, "no request after the handshake"),
    closedWithin(slowHeaders, waitMs, "slow headers"),
    closedWithin(keptAlive, waitMs, "idle keep-alive"),
  ]);

  // An HTTP/2 session learns the stream limit, and goes once idle.
  const session = http2.connect(`https://127.0.0.1:${tight.port}`, { ca: cert });
  session.on("error", () => {});
  await new Promise((resolve) => session.once("remoteSettings", resolve));
  t.is(session.remoteSettings.maxConcurrentStreams, 4);
  await closedWithin(session, waitMs, "an idle HTTP/2 session");

  // A tail over TLS outlives the idle timeout.
  const events = createClient(EventService, createGrpcTransport({ baseUrl: `https://127.0.0.1:${tight.port}`, nodeOptions: { ca: cert } }));
  const { thread } = await createClient(TurnService, createGrpcTransport({ baseUrl: `https://127.0.0.1:${tight.port}`, nodeOptions: { ca: cert } })).createThread({});
  let heartbeats = 0;
  const controller = new AbortController();
  for await (const res of events.tailEvents({ threadId: thread!.threadId, follow: true }, { signal: controller.signal })) {
    if (res.item.case === "heartbeat" && ++heartbeats === 20) break;
  }
  controller.abort();
  t.is(heartbeats, 20);

  // Twelve connections held by SSE streams fill the cap: a thirteenth is closed before its handshake.
  const held: net.Socket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  // The clients above may still hold a connection or two: take the room that is left.
  while (held.length <= 12) {
    const socket = await rawSocket(tight.port, http1).catch(() => undefined);
    if (!socket) break;
    held.push(socket);
    socket.write(`GET /threads/${thread!.threadId}/events/stream HTTP/1.1\r\nHost: eventide\r\n\r\n`);
    await receivedText(socket, ": caught up", waitMs);
  }
  t.true(held.length >= 10 && held.length <= 12, `${held.length} connections held`);
  await t.throwsAsync(rawSocket(tight.port, http1), { message: /closed before it connected/ });
  held.pop()!.destroy();
  const deadline = Date.now() + waitMs;
  for (;;) {
    const socket = await rawSocket(tight.port, http1).catch(() => undefined);
    if (socket) {
      held.push(socket);
      break;
    }
    if (Date.now() > deadline) throw new Error("no room after a connection closed");
    await delay(50);
  }
});
