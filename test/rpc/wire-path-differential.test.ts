// The wire path answers exactly as Connect does. The same requests go to two
// servers, one with the wire path (the default) and one with EVENTIDE_WIRE_PATH=off,
// over gRPC, gRPC-Web and Connect (protobuf), on both tiers; the answers are
// compared: HTTP status, headers, every message (decoded), trailers (the
// grpc-status-details-bin decoded), Connect error JSON and end-stream messages.
// Only what legitimately differs between two runs is normalised: request ids,
// dates, generated ids and timestamps, and each server's own thread ids.
import test from "ava";
import http2 from "node:http2";
import { setTimeout as delay } from "node:timers/promises";
import { create, type DescMessage, fromBinary, type MessageInitShape, toBinary, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { ViolationsSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { AppendEventsRequestSchema, AppendEventsResponseSchema, TailEventsRequestSchema, TailEventsResponseSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { MultitaskStrategy, SubmitTurnRequestSchema, SubmitTurnResponseSchema } from "../../gen/eventide/v1/turn_service_pb.js";
import { apiKeysEnv, clientsWithKey } from "../support/keys.js";
import { envelope, exchange, type RawExchange } from "../support/raw-rpc.js";
import { startTestServer, type TestServer, tierKinds } from "../support/server.js";

const keys = {
  writer: { key: "wire-writer-key-0001", tenant: "acme", role: "admin" },
  client: { key: "wire-client-key-0001", tenant: "acme", role: "client" },
  other: { key: "wire-other-key-00001", tenant: "globex", role: "admin" },
  tailer: { key: "wire-tailer-key-0001", tenant: "acme", role: "agent" },
  spender: { key: "wire-spender-key-001", tenant: "acme", role: "agent" },
};
const maxRequestBytes = 64 * 1024;
const env = {
  EVENTIDE_API_KEYS: apiKeysEnv(keys),
  EVENTIDE_KEY_RATE: "20",
  EVENTIDE_KEY_BURST: "1000",
  EVENTIDE_HEARTBEAT_MS: "300",
  EVENTIDE_MAX_REQUEST_BYTES: String(maxRequestBytes),
};
const missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
type Wire = "grpc" | "grpc-web" | "connect";
const wires: Wire[] = ["grpc", "grpc-web", "connect"];

/** Every call to Connect's Node adapter answering these three RPCs, by server port: the wire path must leave none. */
const connectAnswered = new Map<string, number>();
const writeHead = http2.Http2ServerResponse.prototype.writeHead;
http2.Http2ServerResponse.prototype.writeHead = function (this: http2.Http2ServerResponse, ...args: never[]) {
  const url = this.req.url ?? "";
  if (/EventService\/(AppendEvents|TailEvents)$|TurnService\/SubmitTurn$/.test(url)) {
    const at = `${this.req.socket.localPort}`;
    connectAnswered.set(at, (connectAnswered.get(at) ?? 0) + 1);
  }
  return writeHead.apply(this, args as unknown as Parameters<typeof writeHead>);
} as typeof writeHead;

interface Pair {
  on: TestServer;
  off: TestServer;
}
const pairs = new Map<string, Pair>();

test.before(async () => {
  for (const tier of tierKinds) {
    pairs.set(tier, { on: await startTestServer(tier, env), off: await startTestServer(tier, { ...env, EVENTIDE_WIRE_PATH: "off" }) });
  }
});
test.after.always(async () => {
  http2.Http2ServerResponse.prototype.writeHead = writeHead;
  for (const { on, off } of pairs.values()) await Promise.all([on.close(), off.close()]);
});

/** What each server holds for a case: threads made the same way on both, so seqs match. */
interface Fixture {
  server: TestServer;
  thread: string;
  otherThread: string;
}

async function fixture(server: TestServer, events = 3): Promise<Fixture> {
  const agent = clientsWithKey(server.baseUrl, keys.writer.key);
  const { thread } = await agent.turns.createThread({});
  const threadId = thread!.threadId;
  if (events > 0) await agent.events.appendEvents({ threadId, events: Array.from({ length: events }, (_, i) => ({ type: "message.delta", payload: { i } })) });
  const { thread: other } = await clientsWithKey(server.baseUrl, keys.other.key).turns.createThread({});
  return { server, thread: threadId, otherThread: other!.threadId };
}

interface Request {
  key?: keyof typeof keys;
  /** The request message, or raw bytes sent as the message. */
  body: Uint8Array;
  /** Send the bytes as they are, without an envelope (for bodies that are not one envelope). */
  raw?: boolean;
  timeoutMs?: number;
  /** Per-protocol deadline in ms. */
  deadlineMs?: number;
  /** Stop (and cancel) once this says so, given the decoded data messages so far. */
  stop?: (messages: Record<string, unknown>[], f: Fixture) => boolean;
  /** Heartbeats are timing: left out unless the case is about them. */
  keepHeartbeats?: boolean;
}

type Rpc = "append" | "tail" | "submit";
type Case = {
  name: string;
  rpc: Rpc;
  events?: number;
  /** Done on each server before the request is sent. */
  before?: (f: Fixture) => Promise<unknown>;
  request: (f: Fixture, wire: Wire) => Request;
  after?: (f: Fixture, wire: Wire) => Promise<unknown>;
};

const append = (init: MessageInitShape<typeof AppendEventsRequestSchema>) => toBinary(AppendEventsRequestSchema, create(AppendEventsRequestSchema, init));
const submit = (init: MessageInitShape<typeof SubmitTurnRequestSchema>) => toBinary(SubmitTurnRequestSchema, create(SubmitTurnRequestSchema, init));
const tail = (init: MessageInitShape<typeof TailEventsRequestSchema>) => toBinary(TailEventsRequestSchema, create(TailEventsRequestSchema, init));
const delta = (i: number, eventId = "") => ({ eventId, type: "message.delta", payload: { text: `token ${i}`, i } });

const cases: Case[] = [
  { name: "single append", rpc: "append", request: (f) => ({ body: append({ threadId: f.thread, events: [delta(1)] }) }) },
  { name: "batch with client event ids", rpc: "append", request: (f, w) => ({ body: append({ threadId: f.thread, events: [1, 2, 3].map((i) => delta(i, `${w}-b-${i}`)) }) }) },
  { name: "batch of 100 without ids", rpc: "append", request: (f) => ({ body: append({ threadId: f.thread, expectedLastSeq: 4n, events: Array.from({ length: 100 }, (_, i) => delta(i)) }) }) },
  {
    name: "a retried batch returns the original seqs",
    rpc: "append",
    request: (f, w) => ({ body: append({ threadId: f.thread, events: [1, 2].map((i) => delta(i, `${w}-retry-${i}`)) }) }),
    after: async (f, w) => normalise(await send(f, "append", w, { body: append({ threadId: f.thread, events: [1, 2].map((i) => delta(i, `${w}-retry-${i}`)) }) }), "append", f),
  },
  { name: "stale expected_last_seq", rpc: "append", request: (f) => ({ body: append({ threadId: f.thread, expectedLastSeq: 1n, events: [delta(1)] }) }) },
  { name: "unknown thread", rpc: "append", request: () => ({ body: append({ threadId: missing, events: [delta(1)] }) }) },
  { name: "another tenant's thread", rpc: "append", request: (f) => ({ body: append({ threadId: f.otherThread, events: [delta(1)] }) }) },
  { name: "no key", rpc: "append", request: (f) => ({ key: undefined, body: append({ threadId: f.thread, events: [delta(1)] }) }) },
  { name: "a role that may not append", rpc: "append", request: (f) => ({ key: "client", body: append({ threadId: f.thread, events: [delta(1)] }) }) },
  { name: "over the size cap", rpc: "append", request: (f) => ({ body: append({ threadId: f.thread, events: [{ type: "custom", payload: { big: "x".repeat(maxRequestBytes) } }] }) }) },
  { name: "undecodable body", rpc: "append", request: () => ({ body: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) }) },
  { name: "a __proto__ key in a payload", rpc: "append", request: (f) => ({ body: append({ threadId: f.thread, events: [{ type: "custom", payload: { a: { ["__proto__"]: 1 } } }] }) }) },
  { name: "protovalidate violations", rpc: "append", request: () => ({ body: append({ threadId: "nope", events: [{ type: "Bad" }, { type: "x", level: "fatal" }] }) }) },
  { name: "a service rule", rpc: "append", request: (f) => ({ body: append({ threadId: f.thread, events: [{ type: "turn.completed" }] }) }) },
  { name: "an envelope shorter than it says", rpc: "append", request: (f) => ({ raw: true, body: envelope(append({ threadId: f.thread, events: [delta(1)] }), 0, 4096) }) },
  { name: "an empty body", rpc: "append", request: () => ({ raw: true, body: new Uint8Array(0) }) },
  { name: "an invalid deadline", rpc: "append", request: (f) => ({ deadlineMs: -1, body: append({ threadId: f.thread, events: [delta(1)] }) }) },
  { name: "tail: history", rpc: "tail", request: (f) => ({ body: tail({ threadId: f.thread }) }) },
  { name: "tail: history in batches", rpc: "tail", events: 7, request: (f) => ({ body: tail({ threadId: f.thread, afterSeq: 1n, maxEventsPerResponse: 3 }) }) },
  {
    name: "tail: live",
    rpc: "tail",
    request: (f) => ({
      key: "tailer",
      body: tail({ threadId: f.thread, follow: true }),
      stop: (messages) => {
        const caughtUp = messages.findIndex((m) => "caughtUp" in m);
        if (caughtUp >= 0 && !appending.has(f)) {
          appending.add(f);
          const agent = clientsWithKey(f.server.baseUrl, keys.writer.key);
          void (async () => {
            for (const i of [1, 2, 3]) await agent.events.appendEvents({ threadId: f.thread, events: [delta(100 + i)] });
          })();
        }
        return caughtUp >= 0 && messages.slice(caughtUp + 1).filter((m) => "event" in m).length >= 3;
      },
    }),
    after: (f) => slotsOf(f),
  },
  { name: "tail: heartbeat", rpc: "tail", request: (f) => ({ key: "tailer", keepHeartbeats: true, body: tail({ threadId: f.thread, follow: true }), stop: (m) => m.some((x) => "heartbeat" in x) }) },
  { name: "tail: a deadline that expires", rpc: "tail", request: (f) => ({ key: "tailer", deadlineMs: 700, body: tail({ threadId: f.thread, follow: true }) }), after: (f) => slotsOf(f) },
  { name: "tail: cancelled by the client", rpc: "tail", request: (f) => ({ key: "tailer", body: tail({ threadId: f.thread, follow: true }), stop: (m) => m.some((x) => "caughtUp" in x) }), after: (f) => slotsOf(f) },
  { name: "tail: after_seq past the end", rpc: "tail", request: (f) => ({ body: tail({ threadId: f.thread, afterSeq: 99n }) }) },
  { name: "tail: another tenant's thread", rpc: "tail", request: (f) => ({ body: tail({ threadId: f.otherThread }) }) },
  { name: "tail: no key", rpc: "tail", request: (f) => ({ key: undefined, body: tail({ threadId: f.thread }) }) },
  { name: "tail: protovalidate violations", rpc: "tail", request: () => ({ body: tail({ threadId: "nope", types: ["Bad"] }) }) },
  { name: "tail: undecodable body", rpc: "tail", request: () => ({ body: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) }) },
  { name: "tail: over the size cap", rpc: "tail", request: (f) => ({ body: tail({ threadId: f.thread, types: ["x".repeat(maxRequestBytes)] }) }) },
  // An empty body: the request stream has ended before the handler reads it (it reads after the interceptors).
  { name: "tail: no request message", rpc: "tail", request: () => ({ raw: true, body: new Uint8Array(0) }) },
  { name: "tail: two request messages", rpc: "tail", request: (f) => ({ raw: true, body: Buffer.concat([envelope(tail({ threadId: f.thread })), envelope(tail({ threadId: f.thread }))]) }) },
  { name: "submit: a turn", rpc: "submit", request: (f) => ({ body: submit({ threadId: f.thread, input: { text: "hi" }, metadata: { k: "v" } }) }) },
  { name: "submit: a turn on a new thread", rpc: "submit", request: () => ({ body: submit({ input: { text: "hi" } }) }) },
  {
    name: "submit: REJECT while a turn is queued",
    rpc: "submit",
    before: (f) => clientsWithKey(f.server.baseUrl, keys.writer.key).turns.submitTurn({ threadId: f.thread, input: { n: 1 } }),
    request: (f) => ({ body: submit({ threadId: f.thread, input: { n: 2 }, multitaskStrategy: MultitaskStrategy.REJECT }) }),
  },
  { name: "submit: unknown thread", rpc: "submit", request: () => ({ body: submit({ threadId: missing, input: {} }) }) },
  { name: "submit: another tenant's thread", rpc: "submit", request: (f) => ({ body: submit({ threadId: f.otherThread, input: {} }) }) },
  { name: "submit: no key", rpc: "submit", request: (f) => ({ key: undefined, body: submit({ threadId: f.thread, input: {} }) }) },
  { name: "submit: a role that may not submit", rpc: "submit", request: (f) => ({ key: "tailer", body: submit({ threadId: f.thread, input: {} }) }) },
  { name: "submit: protovalidate violations", rpc: "submit", request: () => ({ body: submit({ threadId: "nope", metadata: { "": "v" }, multitaskStrategy: 9 as MultitaskStrategy }) }) },
  { name: "submit: a service rule", rpc: "submit", request: (f) => ({ body: submit({ threadId: f.thread, input: { text: "a\u0000b" } }) }) },
  { name: "submit: a __proto__ key in the input", rpc: "submit", request: (f) => ({ body: submit({ threadId: f.thread, input: { a: { ["__proto__"]: 1 } } }) }) },
  { name: "submit: undecodable body", rpc: "submit", request: () => ({ body: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]) }) },
  { name: "submit: over the size cap", rpc: "submit", request: (f) => ({ body: submit({ threadId: f.thread, input: { big: "x".repeat(maxRequestBytes) } }) }) },
];

const appending = new WeakSet<Fixture>();

/** The server's open stream slots once it let go of them (a slot is released the moment the client leaves). */
async function slotsOf(f: Fixture): Promise<number> {
  const open = () => [...f.server.core.auth.limits.openStreamsByKey().values()].reduce((a, b) => a + b, 0);
  for (let i = 0; i < 100 && open() > 0; i++) await delay(20);
  return open();
}

for (const tier of tierKinds) {
  for (const c of cases) {
    for (const wire of wires) {
      // One at a time: tails with heartbeats and deadlines compare better on a quiet machine.
      test.serial(`${tier}/${wire}: ${c.name}`, async (t) => {
        const { on, off } = pairs.get(tier)!;
        const [a, b] = await Promise.all([fixture(on, c.events), fixture(off, c.events)]);
        if (c.before) await Promise.all([c.before(a), c.before(b)]);
        const [ra, rb] = await Promise.all([send(a, c.rpc, wire, c.request(a, wire)), send(b, c.rpc, wire, c.request(b, wire))]);
        const [na, nb] = [normalise(ra, c.rpc, a, c.request(a, wire).keepHeartbeats), normalise(rb, c.rpc, b, c.request(b, wire).keepHeartbeats)];
        t.deepEqual(na, nb);
        // Each answer is a real one (a status, messages or an error), not two empty ones alike.
        t.true(ra.status > 0 && (ra.frames.length > 0 || ra.body.length > 0 || Object.keys(ra.trailers).length > 0));
        if (c.after) t.deepEqual(await c.after(a, wire), await c.after(b, wire));
      });
    }
  }

  test.serial(`${tier}: over the rate limit, on both paths`, async (t) => {
    const { on, off } = pairs.get(tier)!;
    const outcomes = await Promise.all(
      [on, off].map(async (server) => {
        const f = await fixture(server, 0);
        // 20/s and a burst of 1000 (per 10 s): calls past those are refused, until the next second's 20.
        const spender = clientsWithKey(server.baseUrl, keys.spender.key).events;
        const spend = (n: number) => Promise.all(Array.from({ length: n }, () => spender.appendEvents({ threadId: "nope", events: [] }).catch((err: unknown) => ConnectError.from(err).code)));
        // Past a second's 20 and the burst's 1000: on a loaded machine 1,500 calls may take long
        // enough for the allowance to grow with them, so spend again until one is refused.
        let spent: unknown[] = [];
        for (let round = 0; round < 5 && !spent.includes(Code.ResourceExhausted); round++) spent = await spend(1500);
        let last: unknown[] = [];
        let allRefused = false;
        // The three calls may straddle a new second (on a loaded machine, several): then again, past its 20.
        for (let attempt = 0; attempt < 50 && !allRefused; attempt++) {
          await spend(30);
          last = await Promise.all(wires.map(async (w) => normalise(await send(f, "append", w, { key: "spender", body: append({ threadId: f.thread, events: [delta(1)] }) }), "append", f)));
          allRefused = JSON.stringify(last).split("retry in <n> ms").length === 4;
        }
        return { refused: spent.includes(Code.ResourceExhausted), allRefused, last };
      }),
    );
    t.true(outcomes[0].refused);
    t.true(outcomes[0].allRefused, "the three calls were refused together at least once");
    t.deepEqual(outcomes[0], outcomes[1]);
  });

  test.serial(`${tier}: the wire path served these RPCs (Connect answered none of them)`, (t) => {
    const { on, off } = pairs.get(tier)!;
    t.is(connectAnswered.get(String(on.port)) ?? 0, 0);
    t.true((connectAnswered.get(String(off.port)) ?? 0) > 0);
  });
}

const paths: Record<Rpc, string> = { append: "EventService/AppendEvents", tail: "EventService/TailEvents", submit: "TurnService/SubmitTurn" };
const responseSchemas: Record<Rpc, DescMessage> = { append: AppendEventsResponseSchema, tail: TailEventsResponseSchema, submit: SubmitTurnResponseSchema };

function send(f: Fixture, rpc: Rpc, wire: Wire, req: Request): Promise<RawExchange> {
  const headers: Record<string, string> = {};
  const unary = rpc !== "tail" && wire === "connect";
  if (wire === "grpc") Object.assign(headers, { "content-type": "application/grpc", te: "trailers", "grpc-accept-encoding": "gzip, br" });
  if (wire === "grpc-web") Object.assign(headers, { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "grpc-accept-encoding": "gzip" });
  if (wire === "connect" && unary) Object.assign(headers, { "content-type": "application/proto", "connect-protocol-version": "1", "accept-encoding": "gzip" });
  if (wire === "connect" && !unary) Object.assign(headers, { "content-type": "application/connect+proto", "connect-protocol-version": "1", "connect-accept-encoding": "gzip" });
  if (req.deadlineMs !== undefined) {
    const ms = req.deadlineMs;
    if (wire === "connect") headers["connect-timeout-ms"] = ms < 0 ? "soon" : String(ms);
    else headers["grpc-timeout"] = ms < 0 ? "soon" : `${ms}m`;
  }
  const key = "key" in req ? req.key : "writer";
  if (key) headers.authorization = `Bearer ${keys[key].key}`;
  const body = req.raw || unary ? req.body : envelope(req.body);
  const schema = responseSchemas[rpc];
  const stop = req.stop;
  return exchange(`${f.server.baseUrl}/eventide.v1.${paths[rpc]}`, headers, body, {
    enveloped: !unary,
    timeoutMs: req.timeoutMs ?? 10_000,
    stop: stop && ((frames) => stop(frames.filter((x) => x.flags === 0).map((x) => decode(schema, x.data)), f)),
  });
}

function decode(schema: DescMessage, data: Uint8Array): Record<string, unknown> {
  return toJson(schema, fromBinary(schema, data)) as Record<string, unknown>;
}

/** The answer with what may differ between two runs replaced by placeholders. */
function normalise(r: RawExchange, rpc: Rpc, f: Fixture, keepHeartbeats = false): unknown {
  const schema = responseSchemas[rpc];
  const fields = (h: Record<string, string>) => {
    const out: Record<string, unknown> = { ...h };
    delete out.date;
    if (out["x-request-id"]) out["x-request-id"] = "<request id>";
    // A body's length varies where its text does between runs: a 200's messages, an error's "retry in N ms" (the bodies themselves are compared).
    if (out["content-length"] && (r.status === 200 || /retry in \d+ ms/.test(r.body.toString()))) out["content-length"] = "<n>";
    if (out["grpc-status-details-bin"]) out["grpc-status-details-bin"] = status(h);
    return out;
  };
  const frames = r.frames
    .map((x) => {
      if (x.flags === 0) return decode(schema, x.data);
      const text = x.data.toString("utf8");
      if (x.flags === 0x80) return { trailer: fields(Object.fromEntries(text.split("\r\n").filter(Boolean).map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 2)]))) };
      const end = JSON.parse(text) as { metadata?: Record<string, string[]> };
      if (end.metadata?.["x-request-id"]) end.metadata["x-request-id"] = ["<request id>"];
      return { flags: x.flags, end };
    })
    .filter((m) => keepHeartbeats || !("heartbeat" in m));
  const unaryBody = r.frames.length === 0 && r.body.length > 0 ? (r.headers["content-type"] === "application/json" ? JSON.parse(r.body.toString()) : decode(schema, r.body)) : undefined;
  const answer = { status: r.status, headers: fields(r.headers), frames, unaryBody, trailers: fields(r.trailers), cut: r.cut };
  let text = JSON.stringify(answer).replaceAll(f.thread, "<thread>").replaceAll(f.otherThread, "<other thread>");
  // Generated event, turn and thread ids, and the times events, turns and threads were written or heartbeats sent.
  text = text.replace(/"(eventId|turnId|threadId)":"[0-9A-HJKMNP-TV-Z]{26}"/g, '"$1":"<id>"').replace(/"(createdAt|updatedAt|sentAt)":"[^"]+"/g, '"$1":"<time>"');
  text = text.replace(/retry(%20| )in(%20| )\d+(%20| )ms/g, "retry in <n> ms");
  return JSON.parse(text);
}

/** grpc-status-details-bin decoded: code, message, and each detail (Violations as JSON). */
function status(h: Record<string, string>): unknown {
  const error = findTrailerError(new Headers(h));
  return {
    code: error?.code,
    message: error?.rawMessage,
    details: error?.details.map((d) => ("type" in d && d.type === "buf.validate.Violations" ? toJson(ViolationsSchema, fromBinary(ViolationsSchema, d.value)) : d)),
  };
}
