// One structured log line per RPC (unary when it returns, a stream when it
// ends): method, code, duration, request id (echoed in x-request-id), the
// caller's tenant and key name, the correlation id; API keys never appear.
import test from "ava";
import { Writable } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import { newId } from "../../server/domain/ids.js";
import { createLogger } from "../../server/observability/logger.js";
import { clientsWithAuthorization } from "../support/keys.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const clientKey = "secretkey1234";
const agentKey = "agentkey5678";

interface LogLine {
  level: number;
  msg: string;
  method?: string;
  code?: string;
  duration_ms?: number;
  request_id?: string;
  tenant?: string;
  key?: string;
  correlation_id?: string;
  messages?: number;
  error?: string;
}

let server: TestServer;
const output: string[] = [];

test.before(async () => {
  const destination = new Writable({
    write(chunk, _encoding, done) {
      output.push(String(chunk));
      done();
    },
  });
  server = await startTestServer(
    "memory",
    { EVENTIDE_API_KEYS: `${clientKey}:acme:client,${agentKey}:acme:agent`, EVENTIDE_ROLES: "server,persister,dispatcher" },
    { log: createLogger({ logLevel: "info" }, destination) },
  );
});

test.after.always(async () => {
  await server?.close();
});

const clients = (authorization?: string) => clientsWithAuthorization(server.baseUrl, authorization);

const rpcLines = (): LogLine[] =>
  output
    .join("")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as LogLine)
    .filter((l) => l.msg === "rpc");

/** The rpc lines of one request id; waits for `count` of them (a stream logs when it ends). */
async function linesOf(requestId: string, count = 1): Promise<LogLine[]> {
  for (const deadline = Date.now() + 5_000; ; await delay(20)) {
    const lines = rpcLines().filter((l) => l.request_id === requestId);
    if (lines.length >= count || Date.now() > deadline) return lines;
  }
}

test.serial("a unary call logs one line: method, ok, duration, the client's request id (echoed), tenant, key name, correlation id", async (t) => {
  let echoed = null as string | null;
  const res = await clients(`Bearer ${clientKey}`).turns.submitTurn(
    { input: { text: "hi" }, metadata: { correlation_id: "corr-submit-1" } },
    { headers: { "x-request-id": "req-submit-1" }, onHeader: (h) => (echoed = h.get("x-request-id")) },
  );
  t.truthy(res.turn);
  t.is(echoed, "req-submit-1");
  const [line, ...more] = await linesOf("req-submit-1");
  t.is(more.length, 0, "one line per RPC");
  t.like(line, {
    level: 30,
    method: "eventide.v1.TurnService/SubmitTurn",
    code: "ok",
    tenant: "acme",
    key: "acme/client#1",
    correlation_id: "corr-submit-1",
  });
  t.true(typeof line.duration_ms === "number" && line.duration_ms >= 0);
  t.is(line.error, undefined);
});

test.serial("AppendEvents: a generated request id (a ULID) when the client sends none, the events' correlation id", async (t) => {
  const { thread } = await clients(`Bearer ${clientKey}`).turns.createThread({});
  let echoed = null as string | null;
  await clients(`Bearer ${agentKey}`).events.appendEvents(
    {
      threadId: thread!.threadId,
      events: [
        { type: "message.delta", payload: { i: 1 } },
        { type: "message.delta", payload: { i: 2 }, metadata: { correlation_id: "corr-append-1" } },
      ],
    },
    { onHeader: (h) => (echoed = h.get("x-request-id")) },
  );
  t.regex(echoed ?? "", /^[0-9A-HJKMNP-TV-Z]{26}$/);
  const [line] = await linesOf(echoed!);
  t.like(line, { method: "eventide.v1.EventService/AppendEvents", code: "ok", tenant: "acme", key: "acme/agent#2", correlation_id: "corr-append-1" });
});

test.serial("a request id that is not plain text is replaced", async (t) => {
  let echoed = null as string | null;
  await clients(`Bearer ${clientKey}`).turns.listThreads({}, { headers: { "x-request-id": "two words\tand a tab" }, onHeader: (h) => (echoed = h.get("x-request-id")) });
  t.regex(echoed ?? "", /^[0-9A-HJKMNP-TV-Z]{26}$/);
  t.is((await linesOf(echoed!)).length, 1);
});

test.serial("errors: the Connect code name at info, the request id on the error; refused callers have no tenant", async (t) => {
  const notFound = ConnectError.from(
    await clients(`Bearer ${clientKey}`).turns.getThread({ threadId: newId() }, { headers: { "x-request-id": "req-missing-1" } }).catch((e) => e),
  );
  t.is(notFound.code, Code.NotFound);
  t.is(notFound.metadata.get("x-request-id"), "req-missing-1");
  const [missing] = await linesOf("req-missing-1");
  t.like(missing, { level: 30, method: "eventide.v1.TurnService/GetThread", code: "not_found", tenant: "acme", key: "acme/client#1" });
  t.truthy(missing.error);

  for (const [authorization, requestId] of [[undefined, "req-nokey-1"], ["Bearer wrongkey999", "req-badkey-1"]] as const) {
    const refused = ConnectError.from(await clients(authorization).turns.listThreads({}, { headers: { "x-request-id": requestId } }).catch((e) => e));
    t.is(refused.code, Code.Unauthenticated);
    const [line] = await linesOf(requestId);
    t.like(line, { level: 30, method: "eventide.v1.TurnService/ListThreads", code: "unauthenticated" });
    t.false("tenant" in line || "key" in line, "no caller is made up for a refused call");
  }

  // An agent key may not submit turns: the key is valid, the call is not.
  const denied = ConnectError.from(await clients(`Bearer ${agentKey}`).turns.submitTurn({ input: {} }, { headers: { "x-request-id": "req-denied-1" } }).catch((e) => e));
  t.is(denied.code, Code.PermissionDenied);
  t.like((await linesOf("req-denied-1"))[0], { code: "permission_denied" });
});

test.serial("server streams log once, when they end: ok with the messages sent, canceled when the client leaves", async (t) => {
  const { turns, events } = clients(`Bearer ${clientKey}`);
  const { thread } = await turns.createThread({});
  const threadId = thread!.threadId;
  let sent = 0;
  for await (const _ of events.tailEvents({ threadId, afterSeq: 0n, follow: false }, { headers: { "x-request-id": "req-tail-1" } })) sent++;
  const [done, ...more] = await linesOf("req-tail-1");
  t.is(more.length, 0);
  t.like(done, { method: "eventide.v1.EventService/TailEvents", code: "ok", messages: sent, tenant: "acme" });

  const controller = new AbortController();
  const following = events.tailEvents({ threadId, afterSeq: 0n, follow: true }, { signal: controller.signal, headers: { "x-request-id": "req-tail-2" } });
  try {
    for await (const res of following) if (res.item.case === "caughtUp") break;
  } finally {
    controller.abort();
  }
  const [cancelled] = await linesOf("req-tail-2");
  t.like(cancelled, { method: "eventide.v1.EventService/TailEvents", code: "canceled" });
});

test.serial("no API key and no Authorization header ever reaches the log", (t) => {
  const all = output.join("");
  t.true(rpcLines().length >= 10);
  t.false(all.includes(clientKey));
  t.false(all.includes(agentKey));
  t.false(all.includes("wrongkey999"));
  // (The UNAUTHENTICATED message names the header; no line carries its value.)
  t.false(/"authorization"\s*:|Bearer [^<]/i.test(all));
});
