// Every kind of bad input gets its precise code and message, and changes nothing.
// Messages ending in `[rule id]` come from a constraint declared in the proto
// (protovalidate, enforced by the validation interceptor, with a
// buf.validate.Violations detail); the others from the services' own checks.
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ViolationsSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { AgentService } from "../../gen/eventide/v1/agent_service_pb.js";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { MultitaskStrategy, TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { type TestServer, tierKinds, serverPerTier, waitPersisted } from "../support/server.js";

const servers = serverPerTier(test);

const missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
const big = "x".repeat(256 * 1024);
const ulidRule = "does not match regex pattern `^[0-9A-HJKMNP-TV-Z]{26}$` [string.pattern]";
const typeRule = "does not match regex pattern `^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$` [string.pattern]";
const custom = [{ type: "custom" }];

type Case = [name: string, code: Code, message: string, call: (s: TestServer, threadId: string, turnId: string) => Promise<unknown>];

const cases: Case[] = [
  ["append: thread_id not a ULID", Code.InvalidArgument, `thread_id: ${ulidRule}`, (s) => s.events().appendEvents({ threadId: "nope", events: custom })],
  ["append: unknown thread", Code.NotFound, `thread "${missing}" not found`, (s) => s.events().appendEvents({ threadId: missing, events: custom })],
  ["append: unknown turn", Code.NotFound, `turn "${missing}" not found`, (s, th) => s.events().appendEvents({ threadId: th, turnId: missing, events: custom })],
  ["append: no events", Code.InvalidArgument, "events: must contain at least 1 item(s) [repeated.min_items]", (s, th) => s.events().appendEvents({ threadId: th, events: [] })],
  ["append: 1,001 events", Code.InvalidArgument, "events: must contain no more than 1000 item(s) [repeated.max_items]", (s, th) => s.events().appendEvents({ threadId: th, events: Array.from({ length: 1001 }, () => ({ type: "custom" })) })],
  ["append: empty type", Code.InvalidArgument, `events[0].type: ${typeRule}`, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "" }] })],
  ["append: uppercase type", Code.InvalidArgument, `events[0].type: ${typeRule}`, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "Message.Delta" }] })],
  ["append: type with a trailing dot", Code.InvalidArgument, `events[1].type: ${typeRule}`, (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "message" }, { type: "message." }] })],
  ["append: type over 128 characters", Code.InvalidArgument, "events[0].type: must be at most 128 characters [string.max_len]", (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "a".repeat(129) }] })],
  ["append: reserved system type", Code.InvalidArgument, 'events[0].type "turn.completed" is appended by eventide itself; use the TurnService/AgentService RPCs', (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "turn.completed" }] })],
  ["append: payload over 256 KiB", Code.InvalidArgument, "events[0].payload is 262154 bytes as JSON; the limit is 262144", (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", payload: { big } }] })],
  ["append: bad level", Code.InvalidArgument, "events[0].level: must be in list [debug, info, warn, error] [string.in]", (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", level: "fatal" }] })],
  ["append: bad event_id", Code.InvalidArgument, "events[0].event_id: does not match regex pattern `^[A-Za-z0-9_-]{1,64}$` [string.pattern]", (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", eventId: "has space" }] })],
  ["append: event_id twice in a batch", Code.InvalidArgument, 'events[1].event_id "dup" appears twice in the batch', (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", eventId: "dup" }, { type: "custom", eventId: "dup" }] })],
  ["append: negative schema_version", Code.InvalidArgument, "events[0].schema_version: must be greater than or equal to 0 and less than or equal to 1000000 [int32.gte_lte]", (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", schemaVersion: -1 }] })],
  ["append: 65 metadata entries", Code.InvalidArgument, "events[0].metadata: map must be at most 64 entries [map.max_pairs]", (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) }] })],
  ["append: metadata value over 1024 characters", Code.InvalidArgument, 'events[0].metadata["k"]: must be at most 1024 characters [string.max_len]', (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", metadata: { k: "é".repeat(1025) } }] })],
  ["append: U+0000 in a payload", Code.InvalidArgument, "events[0].payload holds U+0000, which cannot be stored", (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", payload: { text: "a\u0000b" } }] })],
  ["append: an unpaired surrogate in a payload key (Connect JSON)", Code.InvalidArgument, "events[0].payload holds an unpaired surrogate, which cannot be stored", (s, th) => jsonEvents(s).appendEvents({ threadId: th, events: [{ type: "custom", payload: { "\ud800": 1 } }] })],
  ["append: U+0000 in a metadata value", Code.InvalidArgument, 'events[0].metadata["k"] holds U+0000, which cannot be stored', (s, th) => s.events().appendEvents({ threadId: th, events: [{ type: "custom", metadata: { k: "\u0000" } }] })],
  ["append: stale expected_last_seq", Code.FailedPrecondition, "expected_last_seq is 0 but the thread's last seq is 2; nothing was written", (s, th) => s.events().appendEvents({ threadId: th, expectedLastSeq: 0n, events: custom })],
  ["append: negative expected_last_seq", Code.InvalidArgument, "expected_last_seq: must be greater than or equal to 0 and less than or equal to 9007199254740991 [int64.gte_lte]", (s, th) => s.events().appendEvents({ threadId: th, expectedLastSeq: -3n, events: custom })],
  ["append: lease_id without turn_id", Code.InvalidArgument, "lease_id needs the turn_id it holds [lease_id_needs_turn_id]", (s, th) => s.events().appendEvents({ threadId: th, leaseId: "some-lease", events: custom })],
  ["append: several violations", Code.InvalidArgument, `thread_id: ${ulidRule}; events[0].type: ${typeRule}; events[1].type: ${typeRule}; and 1 more violation`, (s) => s.events().appendEvents({ threadId: "nope", events: [{ type: "A" }, { type: "B" }, { type: "C" }] })],
  ["submit: unknown thread", Code.NotFound, `thread "${missing}" not found`, (s) => s.turns().submitTurn({ threadId: missing, input: {} })],
  ["submit: input over 256 KiB", Code.InvalidArgument, "input is 262154 bytes as JSON; the limit is 262144", (s, th) => s.turns().submitTurn({ threadId: th, input: { big } })],
  ["submit: idempotency_key over 256 characters", Code.InvalidArgument, "idempotency_key: must be at most 256 characters [string.max_len]", (s, th) => s.turns().submitTurn({ threadId: th, input: {}, idempotencyKey: "k".repeat(257) })],
  ["submit: bad thread_id", Code.InvalidArgument, `thread_id: ${ulidRule}`, (s) => s.turns().submitTurn({ threadId: "01ARZ3NDEKTSV4RRFFQ69G5FA!", input: {} })],
  ["submit: U+0000 in idempotency_key", Code.InvalidArgument, "idempotency_key holds U+0000, which cannot be stored", (s, th) => s.turns().submitTurn({ threadId: th, input: {}, idempotencyKey: "k\u0000" })],
  ["submit: an unpaired surrogate deep in input (Connect JSON)", Code.InvalidArgument, "input holds an unpaired surrogate, which cannot be stored", (s, th) => jsonTurns(s).submitTurn({ threadId: th, input: { a: [{ b: "\udc00" }] } })],
  ["submit: undefined multitask_strategy", Code.InvalidArgument, "multitask_strategy: value must be one of the defined enum values [enum.defined_only]", (s, th) => s.turns().submitTurn({ threadId: th, input: {}, multitaskStrategy: 7 as MultitaskStrategy })],
  ["create: a metadata key of 100,000 characters (echoed cut short)", Code.InvalidArgument, `metadata["${"k".repeat(64)}…"]: must be at most 128 characters [string.max_len]`, (s) => s.turns().createThread({ metadata: { ["k".repeat(100_000)]: "v" } })],
  ["create: U+0000 in a metadata key", Code.InvalidArgument, 'metadata key "a\\u0000b" holds U+0000, which cannot be stored', (s) => s.turns().createThread({ metadata: { "a\u0000b": "v" } })],
  ["create: empty metadata key", Code.InvalidArgument, 'metadata[""]: must be at least 1 characters [string.min_len]', (s) => s.turns().createThread({ metadata: { "": "v" } })],
  ["get thread: empty id", Code.InvalidArgument, `thread_id: ${ulidRule}`, (s) => s.turns().getThread({ threadId: "" })],
  ["get thread: lower-case ULID", Code.InvalidArgument, `thread_id: ${ulidRule}`, (s, th) => s.turns().getThread({ threadId: th.toLowerCase() })],
  ["get turn: unknown", Code.NotFound, `turn "${missing}" not found`, (s) => s.turns().getTurn({ turnId: missing })],
  ["list threads: page_size over 1000", Code.InvalidArgument, "page_size: must be greater than or equal to 0 and less than or equal to 1000 [int32.gte_lte]", (s) => s.turns().listThreads({ pageSize: 1001 })],
  ["list threads: foreign page_token", Code.InvalidArgument, "page_token is not one this server issued", (s) => s.turns().listThreads({ pageToken: "not a token" })],
  ["cancel: reason over 1024 characters", Code.InvalidArgument, "reason: must be at most 1024 characters [string.max_len]", (s, _th, tu) => s.turns().cancelTurn({ turnId: tu, reason: "r".repeat(1025) })],
  ["cancel: U+0000 in reason", Code.InvalidArgument, "reason holds U+0000, which cannot be stored", (s, _th, tu) => s.turns().cancelTurn({ turnId: tu, reason: "\u0000" })],
  ["get event: empty id", Code.InvalidArgument, "event_id: does not match regex pattern `^[A-Za-z0-9_-]{1,64}$` [string.pattern]", (s) => s.events().getEvent({ eventId: "" })],
  ["get event: unknown", Code.NotFound, 'event "never-appended" not found', (s) => s.events().getEvent({ eventId: "never-appended" })],
  ["get event: a tenant_id with a space", Code.InvalidArgument, "tenant_id: does not match regex pattern `^[A-Za-z0-9_.-]{1,64}$` [string.pattern]", (s) => s.events().getEvent({ eventId: "e-1", tenantId: "a b" })],
  ["list events: created_after past year 9999", Code.InvalidArgument, "created_after: must be greater than or equal to 0001-01-01T00:00:00Z and less than or equal to 9999-12-31T23:59:59.999999999Z [timestamp.gte_lte]", (s) => s.events().listEvents({ createdAfter: { seconds: 253402300800n } })],
  ["list events: a tenant_id with U+0000", Code.InvalidArgument, "tenant_id: does not match regex pattern `^[A-Za-z0-9_.-]{1,64}$` [string.pattern]", (s) => s.events().listEvents({ tenantId: "t\u0000" })],
  ["list events: 33 type prefixes", Code.InvalidArgument, "types: must contain no more than 32 item(s) [repeated.max_items]", (s, th) => s.events().listEvents({ threadId: th, types: Array.from({ length: 33 }, () => "message.") })],
  ["tail: bad type prefix", Code.InvalidArgument, "types[0]: does not match regex pattern `^[a-z0-9_.]{1,128}$` [string.pattern]", (s, th) => drain(s.events().tailEvents({ threadId: th, types: ["Bad Prefix"] }))],
  ["tail: bad turn_id", Code.InvalidArgument, `turn_id: ${ulidRule}`, (s, th) => drain(s.events().tailEvents({ threadId: th, turnId: "x" }))],
  ["tail: max_events_per_response over 1000", Code.InvalidArgument, "max_events_per_response: must be less than or equal to 1000 [uint32.lte]", (s, th) => drain(s.events().tailEvents({ threadId: th, maxEventsPerResponse: 1001 }))],
  ["tail: after_seq past the end", Code.OutOfRange, "after_seq 99 is beyond the thread's last seq 2", (s, th) => drain(s.events().tailEvents({ threadId: th, afterSeq: 99n }))],
  ["agent feed: agent_id with a space", Code.InvalidArgument, "agent_id: does not match regex pattern `^[!-~]+$` [string.pattern]", (s) => drain(agents(s).receiveTurns({ agentId: "my agent" }))],
  ["agent feed: max_in_flight over 1000", Code.InvalidArgument, "max_in_flight: must be greater than or equal to 0 and less than or equal to 1000 [int32.gte_lte]", (s) => drain(agents(s).receiveTurns({ agentId: "a", maxInFlight: 1001 }))],
  ["renew: empty lease_id", Code.InvalidArgument, "lease_id: must be at least 1 characters [string.min_len]", (s) => agents(s).renewLease({ leaseId: "" })],
  ["fail: error over 4096 characters", Code.InvalidArgument, "error: must be at most 4096 characters [string.max_len]", (s, _th, tu) => agents(s).failTurn({ turnId: tu, leaseId: "l", error: "e".repeat(4097) })],
];

const agents = (s: TestServer) => createClient(AgentService, s.transport("grpc"));
// Connect JSON carries strings protobuf's binary format cannot (unpaired surrogates).
const jsonTransport = (s: TestServer) => createConnectTransport({ baseUrl: s.baseUrl, httpVersion: "1.1", useBinaryFormat: false });
const jsonEvents = (s: TestServer) => createClient(EventService, jsonTransport(s));
const jsonTurns = (s: TestServer) => createClient(TurnService, jsonTransport(s));

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

for (const tier of tierKinds) {
  for (const [name, code, message, call] of cases) {
    test(`${tier}: ${name} → ${Code[code]}, nothing written`, async (t) => {
      const server = servers.get(tier)!;
      const { thread, turn } = await server.turns().submitTurn({ input: {} });
      const threadId = thread!.threadId;
      const err = await t.throwsAsync(call(server, threadId, turn!.turnId));
      const connectErr = ConnectError.from(err);
      t.is(Code[connectErr.code], Code[code], connectErr.message);
      t.is(connectErr.rawMessage, message);
      // A proto rule's refusal carries its violations; the services' own checks carry none.
      const violations = connectErr.findDetails(ViolationsSchema).flatMap((d) => d.violations);
      const listed = message.split("; ").filter((part) => /\[[\w.]+\]$/.test(part)).length;
      t.is(violations.length, listed + Number(/and (\d+) more violations?$/.exec(message)?.[1] ?? 0));
      t.is<string | undefined, string | undefined>(violations[0]?.ruleId, /\[([\w.]+)\]$/.exec(message.split("; ")[0])?.[1]);
      t.is((await server.turns().getThread({ threadId })).thread!.lastSeq, 2n);
    });
  }

  test(`${tier}: the Violations detail names the field by path and the rule`, async (t) => {
    const server = servers.get(tier)!;
    const err = await t.throwsAsync(server.events("connect").appendEvents({ threadId: missing, events: [{ type: "ok" }, { type: "Bad" }] }));
    const [violation] = ConnectError.from(err).findDetails(ViolationsSchema)[0].violations;
    t.deepEqual(
      violation.field?.elements.map((e) => [e.fieldName, e.fieldNumber, e.subscript.case, Number(e.subscript.value ?? -1)]),
      [["events", 5, "index", 1], ["type", 2, undefined, -1]],
    );
    t.deepEqual(violation.rule?.elements.map((e) => e.fieldName), ["string", "pattern"]);
    t.is(violation.ruleId, "string.pattern");
  });

  test(`${tier}: odd but storable text is appended and persisted as sent`, async (t) => {
    const server = servers.get(tier)!;
    const { thread } = await server.turns().createThread({ metadata: { "\u0001": "\u001f😀" } });
    const threadId = thread!.threadId;
    const payload = { text: "😀 é \uffff \u200b \\u0000 (a backslash, not U+0000) \u0001", "\u007f": ["\ud83d\ude00", null, -0, 1e308] };
    const metadata = { k: "\\ud800 (text, not a surrogate)" };
    const { lastSeq } = await jsonEvents(server).appendEvents({ threadId, events: [{ type: "custom", payload, metadata }] });
    await waitPersisted(server, threadId, Number(lastSeq));
    const [stored] = await server.tiers.warm.read(threadId, Number(lastSeq) - 1, 1);
    t.deepEqual(stored.payload, { ...payload, "\u007f": ["\ud83d\ude00", null, 0, 1e308] });
    t.deepEqual(stored.metadata, metadata);
  });

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
