// The original eventide's HTTP API through the real server, on both tiers:
// POST /events:append, GET thread / events / archives, and the SSE stream
// read with `curl -N` (HTTP/1.1 and HTTP/2), with keys, roles and tenants.
import test from "ava";
import { spawn } from "node:child_process";
import { ulid } from "ulid";
import { curl } from "../support/curl.js";
import { apiKeysEnv, clientsWithKey } from "../support/keys.js";
import { serverPerTier, type TestServer, tierKinds, waitPersisted } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const keys = {
  client: { key: "http-client-key-0001", tenant: "acme", role: "client" },
  agent: { key: "http-agent-key-00001", tenant: "acme", role: "agent" },
  otherAgent: { key: "http-other-agent-001", tenant: "globex", role: "agent" },
  admin: { key: "http-admin-key-00001", tenant: "*", role: "admin" },
};
const servers = serverPerTier(test, {
  EVENTIDE_API_KEYS: apiKeysEnv(keys),
  EVENTIDE_HEARTBEAT_MS: "200",
  EVENTIDE_MAX_REQUEST_BYTES: String(64 * 1024),
});

type Who = keyof typeof keys;

async function http(server: TestServer, who: Who | undefined, path: string, init: RequestInit = {}) {
  const headers = new Headers(init.headers);
  if (who) headers.set("authorization", `Bearer ${keys[who].key}`);
  const res = await fetch(`${server.baseUrl}${path}`, { ...init, headers });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

const append = (server: TestServer, who: Who | undefined, event: Record<string, unknown>, headers: Record<string, string> = {}) =>
  http(server, who, "/events:append", { method: "POST", body: JSON.stringify({ event }), headers: { "content-type": "application/json", ...headers } });

async function newThread(server: TestServer): Promise<string> {
  const { thread } = await clientsWithKey(server.baseUrl, keys.client.key).turns.createThread({});
  return thread!.threadId;
}

/** `curl -N` until it exits (or `stopAfter` lines of data), parsed into SSE frames. */
function curlSse(url: string, args: string[], stopWhen: (frames: SseFrame[]) => boolean, timeoutMs = 10_000): Promise<{ frames: SseFrame[]; raw: string }> {
  return new Promise((resolve, reject) => {
    const curl = spawn("curl", ["-N", "-s", "--max-time", String(timeoutMs / 1000), ...args, url]);
    let raw = "";
    const done = () => {
      curl.kill();
      resolve({ frames: parseSse(raw), raw });
    };
    curl.stdout.on("data", (chunk) => {
      raw += chunk;
      if (stopWhen(parseSse(raw))) done();
    });
    curl.on("error", reject);
    // "close", not "exit": stdout may still hold the last frames when the process exits.
    curl.on("close", done);
  });
}

interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

function parseSse(raw: string): SseFrame[] {
  return raw
    .split("\n\n")
    .slice(0, -1)
    .map((block) => {
      const frame: SseFrame = {};
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) frame.comment = line.slice(1).trim();
        else if (line.startsWith("id: ")) frame.id = line.slice(4);
        else if (line.startsWith("event: ")) frame.event = line.slice(7);
        else if (line.startsWith("data: ")) frame.data = line.slice(6);
      }
      return frame;
    });
}

for (const tier of tierKinds) {
  test(`${tier}: POST /events:append fills in event_id and ts, assigns the seq, and a repeated event_id returns the original seq`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const first = await append(server, "agent", { spec_version: "agent-events/1.0", thread_id: threadId, type: "message.delta", seq: 999, payload: { delta: "hi" } });
    t.is(first.status, 200, JSON.stringify(first.body));
    t.like(first.body, { seq: 2, duplicated: false });
    t.regex(first.body.event_id, /^[0-9A-HJKMNP-TV-Z]{26}$/);

    const event = {
      event_id: `evt-${ulid()}`,
      thread_id: threadId,
      type: "tool.call.started",
      ts: "2026-01-02T03:04:05.000Z",
      level: "warn",
      payload: { name: "search" },
      content_type: "application/json",
      source: "agent://planner",
      trace: { trace_id: "abc", span_id: "def" },
      tags: ["a", "b"],
    };
    const second = await append(server, "agent", event);
    t.like(second.body, { event_id: event.event_id, seq: 3, duplicated: false });
    const again = await append(server, "agent", event);
    t.like(again.body, { event_id: event.event_id, seq: 3, duplicated: true });

    // Reads give the envelope back as written, with eventide's seq.
    const read = await http(server, "client", `/threads/${threadId}/events?from_seq=2`);
    t.is(read.status, 200);
    t.deepEqual(read.body.events, [{ ...event, spec_version: "agent-events/1.0", turn_id: null, seq: 3 }]);
    const all = await http(server, "client", `/threads/${threadId}/events`);
    t.deepEqual(
      all.body.events.map((e: { seq: number; type: string }) => [e.seq, e.type]),
      [
        [1, "thread.created"],
        [2, "message.delta"],
        [3, "tool.call.started"],
      ],
    );
    t.regex(all.body.events[1].ts, /^\d{4}-\d\d-\d\dT/);
  });

  test(`${tier}: two Authorization headers are 401 on every route and change nothing; ?access_token= counts on the SSE stream only`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const two = ["-H", `authorization: Bearer ${keys.agent.key}`, "-H", `authorization: Bearer ${keys.admin.key}`];
    const refused = { error: { code: "unauthenticated", message: "more than one Authorization header" } };
    for (const httpVersion of ["--http1.1", "--http2-prior-knowledge"]) {
      const body = JSON.stringify({ event: { thread_id: threadId, type: "x.y" } });
      const appended = await curl(`${server.baseUrl}/events:append`, [httpVersion, ...two, "-H", "content-type: application/json"], body);
      t.is(appended.status, 401, httpVersion);
      t.deepEqual(JSON.parse(appended.body), refused);
      for (const path of [`/threads/${threadId}`, `/threads/${threadId}/events`, `/threads/${threadId}/events/stream`]) {
        const read = await curl(`${server.baseUrl}${path}`, [httpVersion, ...two]);
        t.is(read.status, 401, `${httpVersion} ${path}`);
        t.deepEqual(JSON.parse(read.body), refused);
      }
    }
    // A key in a URL ends up in access logs: only EventSource's stream takes one (see the SSE test).
    for (const path of [`/threads/${threadId}`, `/threads/${threadId}/events`, `/threads/${threadId}/archives`]) {
      t.is((await http(server, undefined, `${path}?access_token=${keys.client.key}`)).status, 401, path);
    }
    const byToken = await http(server, undefined, `/events:append?access_token=${keys.agent.key}`, { method: "POST", body: JSON.stringify({ event: { thread_id: threadId, type: "x.y" } }) });
    t.is(byToken.status, 401);
    t.is((await http(server, "client", `/threads/${threadId}`)).body.last_seq, "1", "nothing was appended");
  });

  test(`${tier}: bad appends get a precise 4xx and change nothing`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const { turn } = await clientsWithKey(server.baseUrl, keys.client.key).turns.submitTurn({ threadId, input: {} });
    const cases: [string, Promise<{ status: number; body: { error: { code: string; message: string } } }>, number, RegExp][] = [
      ["no key", append(server, undefined, { thread_id: threadId, type: "x.y" }), 401, /API key/],
      ["client role", append(server, "client", { thread_id: threadId, type: "x.y" }), 403, /role client may not call .*AppendEvents/],
      ["other tenant", append(server, "otherAgent", { thread_id: threadId, type: "x.y" }), 404, /not found/],
      ["unknown thread", append(server, "agent", { thread_id: ulid(), type: "x.y" }), 404, /not found/],
      ["no envelope", http(server, "agent", "/events:append", { method: "POST", body: JSON.stringify({ type: "x.y" }) }) as never, 400, /"event"/],
      ["not JSON", http(server, "agent", "/events:append", { method: "POST", body: "{" }) as never, 400, /must be JSON/],
      [
        "invalid UTF-8",
        http(server, "agent", "/events:append", { method: "POST", body: Buffer.from(`{"event":{"thread_id":"${threadId}","type":"x.y","payload":{"text":"caf\xe9"}}}`, "latin1") }) as never,
        400,
        /^the request body is not valid UTF-8$/,
      ],
      ["no thread", append(server, "agent", { type: "x.y" }), 400, /event.thread_id is required/],
      ["bad type", append(server, "agent", { thread_id: threadId, type: "Not A Type" }), 400, /type/],
      ["reserved type", append(server, "agent", { thread_id: threadId, type: "turn.completed" }), 400, /appended by eventide itself/],
      ["payload not an object", append(server, "agent", { thread_id: threadId, type: "x.y", payload: [1] }), 400, /payload must be a JSON object/],
      ["bad spec version", append(server, "agent", { spec_version: "agent-events/9", thread_id: threadId, type: "x.y" }), 400, /spec_version/],
      ["bad ts", append(server, "agent", { thread_id: threadId, type: "x.y", ts: "yesterday" }), 400, /ts must be an RFC 3339 time/],
      ["a \"__proto__\" key", append(server, "agent", JSON.parse(`{"thread_id":"${threadId}","type":"x.y","payload":{"a":{"__proto__":{"b":1}}}}`)), 400, /^event\.payload\.a holds the key "__proto__", which is not accepted$/],
      ["a queued turn's event", append(server, "agent", { thread_id: threadId, turn_id: turn!.turnId, type: "x.y" }), 400, /turn \w+ is queued: its events come from the agent that runs it/],
      ["oversize", append(server, "agent", { thread_id: threadId, type: "x.y", payload: { big: "x".repeat(70 * 1024) } }), 413, /larger than/],
    ];
    for (const [name, reply, status, message] of cases) {
      const { status: got, body } = await reply;
      t.is(got, status, `${name}: ${JSON.stringify(body)}`);
      t.regex(body.error.message, message, name);
      t.is(typeof body.error.code, "string");
    }
    const { body } = await http(server, "client", `/threads/${threadId}`);
    t.is(body.last_seq, "2", "nothing was appended after the turn's submission");
  });

  test(`${tier}: GET /threads/{id}, pages of events across tiers, and archives`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    for (let i = 0; i < 5; i++) await append(server, "agent", { thread_id: threadId, type: "message.delta", payload: { delta: `${i}` } });
    const thread = await http(server, "client", `/threads/${threadId}`);
    t.like(thread.body, { thread_id: threadId, tenant_id: "acme", last_seq: "6" });
    t.is((await http(server, "client", `/threads/${ulid()}`)).status, 404);
    t.is((await http(server, "client", `/threads/not-an-id`)).status, 400);

    await waitPersisted(server, threadId, 6);
    const archived = await clientsWithKey(server.baseUrl, keys.admin.key).archives.archiveThread({ threadId, upToSeq: 4n });
    t.is(archived.archives.length, 1);
    const archives = await http(server, "client", `/threads/${threadId}/archives`);
    t.like(archives.body.archives[0], { thread_id: threadId, from_seq: "1", to_seq: "4" });

    // Pages walk the cold archive, then the warm and hot tiers, with no gap.
    const seqs: number[] = [];
    for (let from = 0; ; ) {
      const page = await http(server, "client", `/threads/${threadId}/events?from_seq=${from}&limit=2`);
      t.is(page.status, 200);
      seqs.push(...page.body.events.map((e: { seq: number }) => e.seq));
      if (page.body.next_from_seq === undefined) break;
      from = page.body.next_from_seq;
    }
    t.deepEqual(seqs, [1, 2, 3, 4, 5, 6]);
    t.is((await http(server, "client", `/threads/${threadId}/events?limit=0`)).status, 400);
    t.is((await http(server, "client", `/threads/${threadId}/events?from_seq=-1`)).status, 400);
    // At the end: an empty page; past it: OUT_OF_RANGE (400), as for a tail.
    t.deepEqual((await http(server, "client", `/threads/${threadId}/events?from_seq=6`)).body, { events: [] });
    const past = await http(server, "client", `/threads/${threadId}/events?from_seq=99`);
    t.is(past.status, 400);
    t.is(past.body.error.code, "out_of_range");
  });

  for (const httpVersion of ["--http1.1", "--http2-prior-knowledge"]) {
    test(`${tier}: SSE over ${httpVersion}: id/event/data frames, live after history, Last-Event-ID resume, heartbeats`, async (t) => {
      const server = servers.get(tier)!;
      const threadId = await newThread(server);
      await append(server, "agent", { thread_id: threadId, type: "message.delta", payload: { delta: "a" } });
      const auth = ["-H", `Authorization: Bearer ${keys.client.key}`, httpVersion];
      const url = `${server.baseUrl}/threads/${threadId}/events/stream`;
      const live = curlSse(url, auth, (frames) => frames.filter((f) => f.id).length >= 4 && frames.some((f) => f.comment === "heartbeat"));
      await delay(300);
      await append(server, "agent", { thread_id: threadId, type: "message.delta", payload: { delta: "b" } });
      await append(server, "agent", { thread_id: threadId, type: "message.completed", payload: { text: "ab" } });
      const { frames } = await live;
      const events = frames.filter((f) => f.id);
      t.deepEqual(
        events.map((f) => [f.id, f.event]),
        [
          ["1", "thread.created"],
          ["2", "message.delta"],
          ["3", "message.delta"],
          ["4", "message.completed"],
        ],
      );
      t.like(JSON.parse(events[2].data!), { seq: 3, thread_id: threadId, type: "message.delta", payload: { delta: "b" }, spec_version: "agent-events/1.0" });
      t.true(frames.some((f) => f.comment?.startsWith("caught up at seq")));

      const resumed = await curlSse(url, [...auth, "-H", "Last-Event-ID: 2"], (fs) => fs.filter((f) => f.id).length >= 2);
      t.deepEqual(resumed.frames.filter((f) => f.id).map((f) => f.id), ["3", "4"]);
      const fromQuery = await curlSse(`${url}?after_seq=3`, auth, (fs) => fs.filter((f) => f.id).length >= 1);
      t.deepEqual(fromQuery.frames.filter((f) => f.id).map((f) => f.id), ["4"]);
      // EventSource cannot send headers: the key may come as access_token.
      const byToken = await curlSse(`${url}?after_seq=3&access_token=${keys.client.key}`, [httpVersion], (fs) => fs.some((f) => f.id));
      t.deepEqual(byToken.frames.filter((f) => f.id).map((f) => f.id), ["4"]);
    });
  }

  test(`${tier}: SSE with turn filters sends [DONE] once every requested turn ended; errors are HTTP statuses`, async (t) => {
    const server = servers.get(tier)!;
    const client = clientsWithKey(server.baseUrl, keys.client.key);
    const first = await client.turns.submitTurn({ input: { text: "one" } });
    const threadId = first.thread!.threadId;
    const second = await client.turns.submitTurn({ threadId, input: { text: "two" } });
    const firstTurn = first.turn!.turnId;
    const secondTurn = second.turn!.turnId;
    await client.turns.cancelTurn({ turnId: firstTurn });

    const url = `${server.baseUrl}/threads/${threadId}/events/stream?turn_id=${firstTurn},${secondTurn}`;
    const stream = curlSse(url, ["-H", `Authorization: Bearer ${keys.client.key}`], (fs) => fs.some((f) => f.data === "[DONE]"));
    await delay(300);
    await client.turns.cancelTurn({ turnId: secondTurn });
    const { frames, raw } = await stream;
    const events = frames.filter((f) => f.id);
    t.true(events.every((f) => [firstTurn, secondTurn].includes(JSON.parse(f.data!).turn_id)), raw);
    t.deepEqual(
      events.map((f) => f.event),
      ["turn.submitted", "turn.submitted", "turn.cancelled", "turn.cancelled"],
    );
    t.is(frames[frames.length - 1].data, "[DONE]");

    // A turn that ended before the stream began, resumed past its end: [DONE] at once.
    const lastSeq = events[events.length - 1].id;
    const resumed = await curlSse(`${server.baseUrl}/threads/${threadId}/events/stream?turn_id=${firstTurn}`, ["-H", `Authorization: Bearer ${keys.client.key}`, "-H", `Last-Event-ID: ${lastSeq}`], (fs) => fs.some((f) => f.data === "[DONE]"));
    t.deepEqual(resumed.frames.filter((f) => f.id || f.data), [{ data: "[DONE]" }]);

    const status = async (path: string, who: Who | undefined) => (await fetch(`${server.baseUrl}${path}`, { headers: who ? { authorization: `Bearer ${keys[who].key}` } : {} })).status;
    t.is(await status(`/threads/${threadId}/events/stream`, undefined), 401);
    t.is(await status(`/threads/${threadId}/events/stream`, "otherAgent"), 404);
    t.is(await status(`/threads/${ulid()}/events/stream`, "client"), 404);
    t.is(await status(`/threads/${threadId}/events/stream?after_seq=x`, "client"), 400);
    t.is(await status(`/threads/${threadId}/events/stream?after_seq=999`, "client"), 400);
    t.is(await status(`/threads/${threadId}/events/stream?turn_id=${ulid()}`, "client"), 404);
  });
}
