// Clients that go away at any moment give back what their streams held. Hundreds
// at once, with one API key, on both tiers: connections dropped while the server
// sniffs their first bytes, before their request's headers are complete, before
// the first answer, in the middle of a stream, and with requests pipelined behind
// a stream; over HTTP/1.1 and HTTP/2; for the SSE stream, TailEvents and
// AgentService.ReceiveTurns. Afterwards the key holds no stream slot and no tail
// or agent feed is open, as /metrics shows (eventide_open_streams,
// eventide_active_tails, eventide_active_agent_feeds).
import test from "ava";
import http2 from "node:http2";
import { setTimeout as delay } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { ReceiveTurnsRequestSchema } from "../../gen/eventide/v1/agent_service_pb.js";
import { TailEventsRequestSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { serveMetrics } from "../../server/observability/metrics-server.js";
import { apiKeysEnv, clientsWithKey } from "../support/keys.js";
import { type Scrape, scrapeUntil } from "../support/prometheus.js";
import { envelope } from "../support/raw-rpc.js";
import { serverPerTier, tierKinds } from "../support/server.js";
import { closedWithin, frameType, headerBlock, http2Frame, http2Preface, rawSocket, receivedText } from "../support/sockets.js";

const keys = { prober: { key: "prober-admin-key-0001", tenant: "*", role: "admin" } };
/** How logs and metrics name that key. */
const keyName = "*/admin#1";
const servers = serverPerTier(test, {
  EVENTIDE_API_KEYS: apiKeysEnv(keys),
  EVENTIDE_KEY_RATE: "0",
  EVENTIDE_KEY_MAX_STREAMS: "100000",
  EVENTIDE_HEARTBEAT_MS: "200",
});

/** Connections per kind of call, protocol and moment of leaving. */
const perGroup = 20;
const waitMs = 60_000;

/** A streaming call as raw HTTP/1.1 bytes and as HTTP/2 headers and body. */
interface StreamCall {
  name: string;
  /** The whole HTTP/1.1 request; `i` makes each one distinct where that matters (agent ids). */
  http1(i: number): Buffer;
  http2(i: number): { headers: http2.OutgoingHttpHeaders; body?: Buffer };
  /** Text of the HTTP/1.1 answer once the stream runs; none for a feed, which says nothing until it has work. */
  http1Started?: string;
  /** Whether a running stream sends data at once over HTTP/2. */
  http2SendsAtOnce: boolean;
}

function streamCalls(threadId: string): StreamCall[] {
  const authorization = `Bearer ${keys.prober.key}`;
  const ssePath = `/threads/${threadId}/events/stream`;
  const connectPost = (path: string, body: Uint8Array) =>
    Buffer.concat([
      Buffer.from(
        `POST ${path} HTTP/1.1\r\nHost: eventide\r\nContent-Type: application/connect+proto\r\nConnect-Protocol-Version: 1\r\n` +
          `Authorization: ${authorization}\r\nContent-Length: ${body.length}\r\n\r\n`,
      ),
      body,
    ]);
  const grpcPost = (path: string, body: Uint8Array) => ({
    headers: { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", authorization },
    body: Buffer.from(body),
  });
  const tailBody = envelope(toBinary(TailEventsRequestSchema, create(TailEventsRequestSchema, { threadId, follow: true })));
  const feedBody = (i: number) => envelope(toBinary(ReceiveTurnsRequestSchema, create(ReceiveTurnsRequestSchema, { agentId: `prober-${i}`, maxInFlight: 1 })));
  return [
    {
      name: "SSE",
      http1: () => Buffer.from(`GET ${ssePath} HTTP/1.1\r\nHost: eventide\r\nAuthorization: ${authorization}\r\n\r\n`),
      http2: () => ({ headers: { ":method": "GET", ":path": ssePath, authorization } }),
      http1Started: ": caught up",
      http2SendsAtOnce: true,
    },
    {
      name: "TailEvents",
      http1: () => connectPost("/eventide.v1.EventService/TailEvents", tailBody),
      http2: () => grpcPost("/eventide.v1.EventService/TailEvents", tailBody),
      http1Started: "HTTP/1.1 200",
      http2SendsAtOnce: true,
    },
    {
      name: "ReceiveTurns",
      http1: (i) => connectPost("/eventide.v1.AgentService/ReceiveTurns", feedBody(i)),
      http2: (i) => grpcPost("/eventide.v1.AgentService/ReceiveTurns", feedBody(i)),
      http2SendsAtOnce: false,
    },
  ];
}

/** Connects and leaves before the server knows what it speaks: silent, or halfway through the HTTP/2 preface. */
async function leaveWhileSniffed(port: number, i: number): Promise<void> {
  const socket = await rawSocket(port);
  if (i % 2) socket.write(http2Preface.subarray(0, 8));
  await delay(50);
  socket.destroy();
}

type Http1Moment = "headers" | "answer" | "streaming" | "pipelined";

async function leaveHttp1(port: number, call: StreamCall, moment: Http1Moment, i: number, gate: Promise<void>): Promise<void> {
  const socket = await rawSocket(port);
  const request = call.http1(i);
  try {
    switch (moment) {
      case "headers":
        // Everything but the blank line that ends the headers.
        socket.write(request.subarray(0, request.indexOf("\r\n\r\n") + 2));
        await delay(50);
        break;
      case "answer":
        // Gone at once, or half-closed (FIN) right after the request, which the server takes as leaving.
        if (i % 2) {
          socket.end(request);
          await closedWithin(socket, waitMs, `${call.name} half-closed`);
        } else {
          socket.write(request);
        }
        break;
      case "streaming":
        socket.write(request);
        if (call.http1Started) await receivedText(socket, call.http1Started, waitMs);
        await gate;
        break;
      case "pipelined":
        // A second request waits behind the first, a stream that never ends.
        socket.write(Buffer.concat([request, call.http1(i + perGroup)]));
        if (call.http1Started) await receivedText(socket, call.http1Started, waitMs);
        else await delay(50);
        break;
    }
  } finally {
    socket.destroy();
  }
}

type Http2Moment = "headers" | "answer" | "streaming";

async function leaveHttp2(baseUrl: string, port: number, call: StreamCall, moment: Http2Moment, i: number, gate: Promise<void>): Promise<void> {
  const { headers, body } = call.http2(i);
  if (moment === "headers") {
    // A HEADERS frame whose header block never ends (no END_HEADERS, no CONTINUATION).
    const socket = await rawSocket(port);
    const block = headerBlock({ ":scheme": "http", ":authority": "eventide", ...(headers as Record<string, string>) });
    socket.write(Buffer.concat([http2Preface, http2Frame(frameType.settings, 0, 0), http2Frame(frameType.headers, 0, 1, block)]));
    await delay(50);
    socket.destroy();
    return;
  }
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  try {
    const stream = session.request(headers, { endStream: body === undefined });
    stream.on("error", () => {});
    if (body) stream.end(body);
    if (moment === "streaming") {
      if (call.http2SendsAtOnce) await firstData(stream, call.name);
      await gate;
    }
    // A reset of the one stream (the connection stays), or the whole connection gone.
    if (i % 2) {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await new Promise((resolve) => stream.once("close", resolve));
    }
  } finally {
    session.destroy();
  }
}

function firstData(stream: http2.ClientHttp2Stream, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no data within ${waitMs} ms`)), waitMs);
    stream.once("data", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

interface Gauges {
  streams: number;
  tails: number;
  feeds: number;
}

const gauges = (s: Scrape): Gauges => ({
  streams: s.value("eventide_open_streams", { key: keyName }) ?? 0,
  tails: s.value("eventide_active_tails") ?? 0,
  feeds: s.value("eventide_active_agent_feeds") ?? 0,
});

/** Scrapes until the key's open streams, the open tails and the open feeds are `expected`; the last reading otherwise. */
async function gaugesUntil(port: number, expected: Gauges): Promise<Gauges> {
  let last: Gauges | undefined;
  try {
    await scrapeUntil(port, (s) => JSON.stringify((last = gauges(s))) === JSON.stringify(expected), "", waitMs);
  } catch {
    // The assertion shows what was still open.
  }
  return last!;
}

for (const tier of tierKinds) {
  test(`${tier}: hundreds of clients gone at every moment, over HTTP/1.1 and HTTP/2, leave no stream slot, tail or agent feed behind`, async (t) => {
    t.timeout(4 * waitMs);
    const server = servers.get(tier)!;
    const metrics = await serveMetrics(server.core.metrics, 0, "127.0.0.1");
    t.teardown(() => metrics.close());
    const prober = clientsWithKey(server.baseUrl, keys.prober.key);
    const { thread } = await prober.turns.createThread({});
    const threadId = thread!.threadId;
    await prober.events.appendEvents({ threadId, events: Array.from({ length: 50 }, (_, k) => ({ type: "message.delta", payload: { k } })) });
    const calls = streamCalls(threadId);

    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    const early: Promise<void>[] = [];
    const streaming: Promise<void>[] = [];
    for (let i = 0; i < perGroup; i++) {
      early.push(leaveWhileSniffed(server.port, i));
      for (const call of calls) {
        for (const moment of ["headers", "answer", "pipelined"] as const) early.push(leaveHttp1(server.port, call, moment, i, gate));
        for (const moment of ["headers", "answer"] as const) early.push(leaveHttp2(server.baseUrl, server.port, call, moment, i, gate));
        streaming.push(leaveHttp1(server.port, call, "streaming", i, gate), leaveHttp2(server.baseUrl, server.port, call, "streaming", i, gate));
      }
    }
    t.is(early.length + streaming.length, perGroup * 22);
    await Promise.all(early);

    // Those that left early gave everything back; the streams waiting at the gate hold a slot each
    // (two of every call kind per connection index: HTTP/1.1 and HTTP/2).
    const running = { streams: 6 * perGroup, tails: 4 * perGroup, feeds: 2 * perGroup };
    t.deepEqual(await gaugesUntil(metrics.port, running), running);

    openGate();
    await Promise.all(streaming);
    const none = { streams: 0, tails: 0, feeds: 0 };
    t.deepEqual(await gaugesUntil(metrics.port, none), none);

    // And the key tails as before.
    const controller = new AbortController();
    try {
      for await (const res of prober.events.tailEvents({ threadId, follow: true }, { signal: controller.signal })) {
        if (res.item.case === "caughtUp") {
          t.is(res.item.value.lastSeq, 51n);
          break;
        }
      }
    } finally {
      controller.abort();
    }
  });
}
