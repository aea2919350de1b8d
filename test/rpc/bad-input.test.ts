// Every kind of bad input gets its precise code and changes nothing.
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { type TestServer, tierKinds, serverPerTier } from "../support/server.js";

const servers = serverPerTier(test);

const missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
const big = "x".repeat(256 * 1024);

type Case = [name: string, code: Code, call: (s: TestServer, threadId: string, turnId: string) => Promise<unknown>];

const cases: Case[] = [
  ["append: thread_id not a ULID", Code.InvalidArgument, (s) => s.events().appendEvents({ threadId: "nope", events: [{ type: "custom" }] })],
  ["append: unknown thread", Code.NotFound, (s) => s.events().appendEvents({ threadId: missing, events: [{ type: "custom" }] })],
  ["append: unknown turn", Code.NotFound, (s, th) => s.events().appendEvents({ threadId: th, turnId: missing, events: [{ type: "custom" }] })],
  ["append: no events", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [] })],
  ["append: 1,001 events", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: Array.from({ length: 1001 }, () => ({ type: "custom" })) })],
  ["append: empty type", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "" }] })],
  ["append: uppercase type", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "Message.Delta" }] })],
  ["append: type with a trailing dot", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "message." }] })],
  ["append: reserved system type", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "turn.completed" }] })],
  ["append: payload over 256 KiB", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", payload: { big } }] })],
  ["append: bad level", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", level: "fatal" }] })],
  ["append: bad event_id", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", eventId: "has space" }] })],
  ["append: event_id twice in a batch", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", eventId: "dup" }, { type: "custom", eventId: "dup" }] })],
  ["append: negative schema_version", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", schemaVersion: -1 }] })],
  ["append: 65 metadata entries", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) }] })],
  ["append: stale expected_last_seq", Code.FailedPrecondition, (s, th) => s.events().appendEvents({ threadId: th, expectedLastSeq: 0n, events: [{ type: "custom" }] })],
  ["append: negative expected_last_seq", Code.InvalidArgument, (s, th) => s.events().appendEvents({ threadId: th, expectedLastSeq: -3n, events: [{ type: "custom" }] })],
  ["submit: unknown thread", Code.NotFound, (s) => s.turns().submitTurn({ threadId: missing, input: {} })],
  ["submit: input over 256 KiB", Code.InvalidArgument, (s, th) => s.turns().submitTurn({ threadId: th, input: { big } })],
  ["submit: idempotency_key over 256 characters", Code.InvalidArgument, (s, th) => s.turns().submitTurn({ threadId: th, input: {}, idempotencyKey: "k".repeat(257) })],
  ["submit: bad thread_id", Code.InvalidArgument, (s) => s.turns().submitTurn({ threadId: "01ARZ3NDEKTSV4RRFFQ69G5FA!", input: {} })],
  ["create: empty metadata key", Code.InvalidArgument, (s) => s.turns().createThread({ metadata: { "": "v" } })],
  ["get thread: empty id", Code.InvalidArgument, (s) => s.turns().getThread({ threadId: "" })],
  ["get turn: unknown", Code.NotFound, (s) => s.turns().getTurn({ turnId: missing })],
  ["get event: empty id", Code.InvalidArgument, (s) => s.events().getEvent({ eventId: "" })],
  ["get event: unknown", Code.NotFound, (s) => s.events().getEvent({ eventId: "never-appended" })],
  ["tail: bad type prefix", Code.InvalidArgument, (s, th) => drain(s.events().tailEvents({ threadId: th, types: ["Bad Prefix"] }))],
  ["tail: bad turn_id", Code.InvalidArgument, (s, th) => drain(s.events().tailEvents({ threadId: th, turnId: "x" }))],
];

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

for (const tier of tierKinds) {
  for (const [name, code, call] of cases) {
    test(`${tier}: ${name} → ${Code[code]}, nothing written`, async (t) => {
      const server = servers.get(tier)!;
      const { thread, turn } = await server.turns().submitTurn({ input: {} });
      const threadId = thread!.threadId;
      const err = await t.throwsAsync(call(server, threadId, turn!.turnId));
      const connectErr = ConnectError.from(err);
      t.is(Code[connectErr.code], Code[code], connectErr.message);
      t.true(connectErr.rawMessage.length > 10, "the message says what is wrong");
      t.is((await server.turns().getThread({ threadId })).thread!.lastSeq, 2n);
    });
  }

  test(`${tier}: a malformed request body is refused`, async (t) => {
    const server = servers.get(tier)!;
    const res = await fetch(`${server.baseUrl}/eventide.v1.EventService/AppendEvents`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"threadId": 42, "events": "nope"}',
    });
    t.is(res.status, 400);
    const body = (await res.json()) as { code: string };
    t.is(body.code, "invalid_argument");
  });
}
