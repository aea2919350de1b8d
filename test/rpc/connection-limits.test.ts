// Nobody can fill the server with connections or streams: silent connections,
// slow header senders, half prefaces and idle sessions are closed after their
// timeout (set short here), connections past EVENTIDE_MAX_CONNECTIONS are closed
// as they arrive, an HTTP/2 stream past EVENTIDE_MAX_STREAMS_PER_CONNECTION is
// refused (REFUSED_STREAM) while the others run on, and streams opened without a
// key share EVENTIDE_ANONYMOUS_MAX_STREAMS. Through it all, unary calls, a
// following tail with heartbeats and SSE keep working. (TLS: see tls.test.ts.)
// The tests share one server and its small caps, so they run one at a time.
import test from "ava";
import http2 from "node:http2";
import type net from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { TailEventsRequestSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { GetThreadRequestSchema } from "../../gen/eventide/v1/turn_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { serveMetrics } from "../../server/observability/metrics-server.js";
import { apiKeysEnv, clientsWithKey } from "../support/keys.js";
import { scrapeUntil } from "../support/prometheus.js";
import { envelope } from "../support/raw-rpc.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { closedWithin, http2Preface, rawSocket, receivedText } from "../support/sockets.js";

const keys = { client: { key: "limits-client-key-001", tenant: "acme", role: "client" } };
const idleMs = 500;
const heartbeatMs = 100;
/** How long a test waits for what a timeout of well under a second should do: generous, for a loaded machine. */
const waitMs = 30_000;

let server: TestServer;
test.before(async () => {
  server = await startTestServer("memory", {
    EVENTIDE_API_KEYS: apiKeysEnv(keys),
    EVENTIDE_KEY_RATE: "0",
    EVENTIDE_HANDSHAKE_TIMEOUT: "300ms",
    EVENTIDE_HEADERS_TIMEOUT: "500ms",
    EVENTIDE_IDLE_TIMEOUT: `${idleMs}ms`,
    EVENTIDE_MAX_STREAMS_PER_CONNECTION: "4",
    EVENTIDE_ANONYMOUS_MAX_STREAMS: "3",
    EVENTIDE_HEARTBEAT_MS: String(heartbeatMs),
  });
});
test.after.always(async () => {
  await server?.close();
});

const withKey = () => clientsWithKey(server.baseUrl, keys.client.key);

async function newThread(): Promise<string> {
  const { thread } = await withKey().turns.createThread({});
  return thread!.threadId;
}

/** Writes `line` every 100 ms until the socket closes: busy, but never finishing anything. */
function drip(socket: net.Socket, line: string): void {
  const timer = setInterval(() => socket.write(line), 100);
  socket.once("close", () => clearInterval(timer));
}

test.serial("silent connections, slow header senders, half prefaces and idle connections are closed, hundreds at once", async (t) => {
  const kinds: Record<string, () => Promise<net.Socket | http2.ClientHttp2Session>> = {
    silent: () => rawSocket(server.port),
    "slow headers": async () => {
      const socket = await rawSocket(server.port);
      socket.write("GET /healthz HTTP/1.1\r\nHost: eventide\r\n");
      drip(socket, "X-Slow: still coming\r\n");
      return socket;
    },
    // Past the first request, only Node's own header timeout can tell (the connection is busy).
    "slow headers of a second request": async () => {
      const socket = await rawSocket(server.port);
      socket.write("GET /healthz HTTP/1.1\r\nHost: eventide\r\n\r\n");
      await receivedText(socket, "200 OK", waitMs);
      socket.write("GET /healthz HTTP/1.1\r\nHost: eventide\r\n");
      drip(socket, "X-Slow: still coming\r\n");
      return socket;
    },
    "half the preface's sniffed bytes": async () => {
      const socket = await rawSocket(server.port);
      socket.write(http2Preface.subarray(0, 8));
      return socket;
    },
    "a preface cut after its first line": async () => {
      const socket = await rawSocket(server.port);
      socket.write(http2Preface.subarray(0, 16));
      return socket;
    },
    "idle HTTP/1.1 after a request": async () => {
      const socket = await rawSocket(server.port);
      socket.write("GET /healthz HTTP/1.1\r\nHost: eventide\r\n\r\n");
      await receivedText(socket, "200 OK", waitMs);
      return socket;
    },
    // PINGs keep the connection busy, but it holds no stream.
    "idle HTTP/2 session": async () => {
      const session = http2.connect(server.baseUrl);
      session.on("error", () => {});
      const timer = setInterval(() => {
        if (!session.closed && !session.destroyed) session.ping(() => {});
      }, 100);
      session.once("close", () => clearInterval(timer));
      return session;
    },
  };
  const perKind = 60;
  const waits: Promise<string>[] = [];
  for (const [kind, open] of Object.entries(kinds)) {
    for (let i = 0; i < perKind; i++) {
      waits.push(
        open().then(async (connection) => {
          try {
            await closedWithin(connection, waitMs, kind);
            return kind;
          } finally {
            connection.destroy();
          }
        }),
      );
    }
  }
  const closed = await Promise.all(waits);
  t.is(closed.length, Object.keys(kinds).length * perKind);
  // The server still answers.
  await t.notThrowsAsync(withKey().turns.listThreads({}));
});

/** A gRPC call with the test's key on an HTTP/2 session of the test's own, counting what arrives. */
function grpcCall(session: http2.ClientHttp2Session, path: string, message: Uint8Array) {
  const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${keys.client.key}` });
  stream.on("error", () => {});
  stream.end(Buffer.from(envelope(message)));
  let chunks = 0;
  stream.on("data", () => chunks++);
  return {
    stream,
    /** Resolves once `n` more chunks (messages, heartbeats) arrived, or with the reset code if it closed first. */
    more: (n: number) =>
      new Promise<"data" | number>((resolve) => {
        const target = chunks + n;
        const onData = () => {
          if (chunks < target) return;
          stream.off("close", onClose);
          stream.off("data", onData);
          resolve("data");
        };
        const onClose = () => {
          stream.off("data", onData);
          resolve(stream.rstCode ?? -1);
        };
        stream.on("data", onData);
        stream.once("close", onClose);
      }),
    /** The call's grpc-status, from its trailers (or headers). */
    status: () =>
      new Promise<string | undefined>((resolve) => {
        stream.once("response", (headers) => headers["grpc-status"] !== undefined && resolve(String(headers["grpc-status"])));
        stream.once("trailers", (trailers) => resolve(String(trailers["grpc-status"])));
        stream.once("close", () => resolve(undefined));
        stream.resume();
      }),
  };
}

const tailRequest = (threadId: string) => toBinary(TailEventsRequestSchema, create(TailEventsRequestSchema, { threadId, follow: true }));

test.serial("a following tail with heartbeats, an SSE stream and a health Watch outlive many idle timeouts; unary calls keep working", async (t) => {
  const clients = withKey();
  const threadId = await newThread();
  // Enough heartbeats to span several idle timeouts.
  const wanted = Math.ceil((4 * idleMs) / heartbeatMs);
  // The tail on a connection of its own, which must see no GOAWAY while the tail runs.
  const session = http2.connect(server.baseUrl);
  session.on("error", () => {});
  t.teardown(() => session.destroy());
  let goaway = false;
  session.once("goaway", () => (goaway = true));
  const tail = grpcCall(session, "/eventide.v1.EventService/TailEvents", tailRequest(threadId));
  const sse = (async () => {
    const socket = await rawSocket(server.port);
    try {
      socket.write(`GET /threads/${threadId}/events/stream HTTP/1.1\r\nHost: eventide\r\nAuthorization: Bearer ${keys.client.key}\r\n\r\n`);
      const text = await receivedText(socket, ": heartbeat", waitMs, wanted);
      return text.split(": heartbeat").length - 1;
    } finally {
      socket.destroy();
    }
  })();
  const watchController = new AbortController();
  const health = createClient(Health, createGrpcTransport({ baseUrl: server.baseUrl }));
  const statuses: ServingStatus[] = [];
  const watching = (async () => {
    try {
      for await (const res of health.watch({ service: "" }, { signal: watchController.signal })) statuses.push(res.status);
    } catch (err) {
      if (!watchController.signal.aborted) throw err;
    }
  })();
  // Unary calls meanwhile, from a Connect client.
  const unary = (async () => {
    let calls = 0;
    for (; calls < wanted / 2; calls++) {
      await clients.turns.getThread({ threadId });
      await delay(heartbeatMs);
    }
    return calls;
  })();

  t.is(await tail.more(wanted), "data");
  t.true((await sse) >= wanted);
  t.true((await unary) >= wanted / 2);
  t.false(goaway, "the tail's connection was closed as idle");
  // The tail's connection takes new calls.
  t.is(await grpcCall(session, "/eventide.v1.TurnService/GetThread", toBinary(GetThreadRequestSchema, create(GetThreadRequestSchema, { threadId }))).status(), "0");
  // The watch, quiet since its first answer, is still open.
  watchController.abort();
  await watching;
  t.deepEqual(statuses, [ServingStatus.SERVING]);

  // Once its tail ends, the connection is idle and goes.
  tail.stream.close(http2.constants.NGHTTP2_CANCEL);
  await closedWithin(session, waitMs, "the tail's connection once idle");
  t.true(goaway);
  // A client whose connection idled out opens a new one for its next call.
  await delay(3 * idleMs);
  await t.notThrowsAsync(clients.turns.getThread({ threadId }));
});

test.serial("an HTTP/2 stream past the connection's limit is refused with REFUSED_STREAM; the others keep streaming", async (t) => {
  const threadId = await newThread();
  // A client that opens its streams before it has read the server's SETTINGS (as clients do at connection start).
  const session = http2.connect(server.baseUrl, { peerMaxConcurrentStreams: 100 });
  session.on("error", () => {});
  t.teardown(() => session.destroy());
  const tail = () => grpcCall(session, "/eventide.v1.EventService/TailEvents", tailRequest(threadId));
  const tails = Array.from({ length: 6 }, tail);
  const outcomes = await Promise.all(tails.map((s) => s.more(1)));
  t.deepEqual(
    [...outcomes].sort((a, b) => String(a).localeCompare(String(b))),
    [http2.constants.NGHTTP2_REFUSED_STREAM, http2.constants.NGHTTP2_REFUSED_STREAM, "data", "data", "data", "data"],
  );
  t.is(session.remoteSettings.maxConcurrentStreams, 4);
  const running = tails.filter((_, i) => outcomes[i] === "data");
  // The four keep streaming (heartbeats) after the refusals, on the same connection.
  t.deepEqual(await Promise.all(running.map((s) => s.more(3))), ["data", "data", "data", "data"]);
  // One ends: a new stream on the connection runs in its place. (One opened at that very moment may
  // still be refused, ENHANCE_YOUR_CALM: Node counts the ended stream until it has processed its end.)
  running[0].stream.close(http2.constants.NGHTTP2_CANCEL);
  let outcome = await tail().more(1);
  for (const deadline = Date.now() + waitMs; outcome !== "data" && Date.now() < deadline; ) {
    await delay(50);
    outcome = await tail().more(1);
  }
  t.is(outcome, "data");
});

test.serial("streams opened without a key share EVENTIDE_ANONYMOUS_MAX_STREAMS: RESOURCE_EXHAUSTED past it; keyed streams are not counted against it", async (t) => {
  const metrics = await serveMetrics(server.core.metrics, 0, "127.0.0.1");
  t.teardown(() => metrics.close());
  const health = createClient(Health, createGrpcTransport({ baseUrl: server.baseUrl }));
  const openWatch = async () => {
    const controller = new AbortController();
    const it = health.watch({ service: "" }, { signal: controller.signal })[Symbol.asyncIterator]();
    try {
      const first = await it.next();
      return { status: first.value?.status as ServingStatus, stop: () => controller.abort() };
    } catch (err) {
      controller.abort();
      throw err;
    }
  };
  const watches = [await openWatch(), await openWatch(), await openWatch()];
  t.teardown(() => watches.forEach((w) => w.stop()));
  t.deepEqual(
    watches.map((w) => w.status),
    [ServingStatus.SERVING, ServingStatus.SERVING, ServingStatus.SERVING],
  );
  const refused = ConnectError.from(await t.throwsAsync(openWatch()));
  t.is(refused.code, Code.ResourceExhausted);
  t.regex(refused.rawMessage, /already has 3 open streams without an API key .* the limit is 3/);
  await scrapeUntil(metrics.port, (s) => s.value("eventide_open_streams", { key: "anonymous" }) === 3, "three anonymous streams", waitMs);

  // Unary health checks and a keyed tail are unaffected.
  t.is((await health.check({ service: "" })).status, ServingStatus.SERVING);
  const threadId = await newThread();
  const controller = new AbortController();
  for await (const res of withKey().events.tailEvents({ threadId, follow: true }, { signal: controller.signal })) {
    if (res.item.case === "caughtUp") break;
  }
  controller.abort();

  // A watch that ends gives its slot back.
  watches.pop()!.stop();
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const watch = await openWatch();
      watches.push(watch);
      t.is(watch.status, ServingStatus.SERVING);
      break;
    } catch (err) {
      if (ConnectError.from(err).code !== Code.ResourceExhausted || Date.now() > deadline) throw err;
      await delay(50);
    }
  }
});

test.serial("HTTP/1.1 pipelining: sixteen requests waiting behind the one being answered are all answered; more close the connection", async (t) => {
  const healthz = (n: number) => `GET /healthz?n=${n} HTTP/1.1\r\nHost: eventide\r\n\r\n`;
  const socket = await rawSocket(server.port);
  t.teardown(() => socket.destroy());
  socket.write(Array.from({ length: 17 }, (_, n) => healthz(n)).join(""));
  const answers = await receivedText(socket, "200 OK", waitMs, 17);
  t.is(answers.split("200 OK").length - 1, 17);

  const greedy = await rawSocket(server.port);
  t.teardown(() => greedy.destroy());
  let answered = 0;
  greedy.on("data", (chunk: Buffer) => (answered += chunk.toString("latin1").split("200 OK").length - 1));
  greedy.write(Array.from({ length: 40 }, (_, n) => healthz(n)).join(""));
  await closedWithin(greedy, waitMs, "a connection with 40 pipelined requests");
  t.true(answered < 40, `${answered} of 40 answered`);
});

test.serial("past EVENTIDE_MAX_CONNECTIONS new connections are closed as they arrive; one that closes makes room; with auth off, every stream is anonymous", async (t) => {
  const capped = await startTestServer("memory", { EVENTIDE_MAX_CONNECTIONS: "10", EVENTIDE_ANONYMOUS_MAX_STREAMS: "2" });
  t.teardown(() => capped.close());
  const healthz = "GET /healthz HTTP/1.1\r\nHost: eventide\r\n\r\n";
  const held: net.Socket[] = [];
  t.teardown(() => held.forEach((s) => s.destroy()));
  // Ten connections, each answered (so the server holds them), kept alive.
  for (let i = 0; i < 10; i++) {
    const socket = await rawSocket(capped.port);
    held.push(socket);
    socket.write(healthz);
    await receivedText(socket, "200 OK", waitMs);
  }
  const extra = await Promise.all(Array.from({ length: 5 }, () => rawSocket(capped.port)));
  for (const socket of extra) socket.write(healthz);
  await Promise.all(extra.map((s, i) => closedWithin(s, waitMs, `connection ${11 + i}`)));
  // The ten still serve.
  for (const socket of held) {
    socket.write(healthz);
    await receivedText(socket, "200 OK", waitMs);
  }

  held.splice(0, 3).forEach((s) => s.destroy());
  const deadline = Date.now() + waitMs;
  for (;;) {
    const socket = await rawSocket(capped.port);
    socket.write(healthz);
    const answered = await receivedText(socket, "200 OK", 2_000).then(
      () => true,
      () => false,
    );
    socket.destroy();
    if (answered) break;
    if (Date.now() > deadline) throw new Error("no room for a new connection after three closed");
    await delay(50);
  }

  // Auth off: tails count against the anonymous cap (2).
  const threadId = (await capped.turns().createThread({})).thread!.threadId;
  const controllers = [new AbortController(), new AbortController()];
  t.teardown(() => controllers.forEach((c) => c.abort()));
  for (const c of controllers) {
    const it = capped.events().tailEvents({ threadId, follow: true }, { signal: c.signal })[Symbol.asyncIterator]();
    while ((await it.next()).value?.item.case !== "caughtUp");
  }
  const third = capped.events().tailEvents({ threadId, follow: true })[Symbol.asyncIterator]();
  const err = ConnectError.from(await t.throwsAsync(third.next()));
  t.is(err.code, Code.ResourceExhausted);
});
