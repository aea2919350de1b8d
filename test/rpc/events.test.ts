// EventService through a real server, on every tier.
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { EventBatchSchema, type TailEventsResponse, TailEventsRequestSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import { EventSchema } from "../../gen/eventide/v1/resources_pb.js";
import { claimTurn } from "../support/agents.js";
import { envelope, exchange } from "../support/raw-rpc.js";
import { collectTail, protocols, type TestServer, tierKinds, serverPerTier } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const servers = serverPerTier(test, { EVENTIDE_HEARTBEAT_MS: "100" });

const seqsOf = (items: TailEventsResponse[]) => items.flatMap((i) => (i.item.case === "event" ? [Number(i.item.value.seq)] : []));
const batchedSeqsOf = (items: TailEventsResponse[]) =>
  items.flatMap((i) => (i.item.case === "events" ? i.item.value.events.map((e) => Number(e.seq)) : []));
const codeOf = (err: unknown) => ConnectError.from(err).code;

async function newThread(server: TestServer): Promise<string> {
  const { thread } = await server.turns().createThread({});
  return thread!.threadId;
}

for (const tier of tierKinds) {
  test(`${tier}: a batch gets consecutive seqs, stored as sent`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const res = await server.events().appendEvents({
      threadId,
      events: [
        { type: "message.delta", payload: { message_id: "m1", delta: "Hel" }, metadata: { correlation_id: "c1" } },
        { type: "message.delta", payload: { message_id: "m1", delta: "lo" }, level: "debug" },
        { type: "message.completed", payload: { message_id: "m1", content: "Hello" }, schemaVersion: 2 },
      ],
    });
    t.is(res.firstSeq, 2n);
    t.is(res.lastSeq, 4n);
    t.deepEqual(res.events.map((e) => e.level), ["info", "debug", "info"]);
    const got = await server.events().getEvent({ eventId: res.events[2].eventId });
    t.like(got.event, { seq: 4n, type: "message.completed", schemaVersion: 2, threadId });
    t.deepEqual(got.event!.payload, { message_id: "m1", content: "Hello" });
    t.deepEqual(res.events[0].metadata, { correlation_id: "c1" });
    t.truthy(res.events[0].createdAt);
  });

  // Binary responses carry the echoed events pre-encoded (not by toBinary): every protocol must read them the same.
  test(`${tier}: every protocol reads the appended events back exactly as stored`, async (t) => {
    const server = servers.get(tier)!;
    const payload = { delta: "é😀", n: 1.5, ok: true, none: null, list: [1, "two", { three: 3 }] };
    for (const protocol of protocols) {
      const threadId = await newThread(server);
      const res = await server.events(protocol).appendEvents({
        threadId,
        events: [
          { type: "message.delta", payload, metadata: { k: "v" } },
          { eventId: `chosen-${protocol}`, type: "custom", level: "warn", schemaVersion: 3 },
        ],
      });
      t.is(res.events.length, 2, protocol);
      const { events: stored } = await server.events().listEvents({ threadId, afterSeq: 1n });
      t.deepEqual(res.events.map((e) => toJson(EventSchema, e)), stored.map((e) => toJson(EventSchema, e)), protocol);
      t.deepEqual(res.events[0].payload, payload, protocol);
      t.like(res.events[1], { eventId: `chosen-${protocol}`, seq: 3n, level: "warn", schemaVersion: 3 }, protocol);
    }
  });

  test(`${tier}: expected_last_seq mismatch is FAILED_PRECONDITION and writes nothing`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const err = await t.throwsAsync(server.events().appendEvents({ threadId, expectedLastSeq: 5n, events: [{ type: "custom" }] }));
    t.is(codeOf(err), Code.FailedPrecondition);
    t.regex(String((err as Error).message), /last seq is 1/);
    const ok = await server.events().appendEvents({ threadId, expectedLastSeq: 1n, events: [{ type: "custom" }] });
    t.is(ok.firstSeq, 2n);
    const stale = await t.throwsAsync(server.events().appendEvents({ threadId, expectedLastSeq: 1n, events: [{ type: "custom" }] }));
    t.is(codeOf(stale), Code.FailedPrecondition);
    t.is((await server.turns().getThread({ threadId })).thread!.lastSeq, 2n);
  });

  test(`${tier}: a retried batch with the same event_ids returns the original seqs`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const batch = { threadId, events: [{ eventId: `a-${tier}`, type: "custom" }, { eventId: `b-${tier}`, type: "custom" }] };
    const first = await server.events().appendEvents(batch);
    await server.events().appendEvents({ threadId, events: [{ type: "custom" }] });
    const retry = await server.events().appendEvents({ ...batch, expectedLastSeq: 1n });
    t.deepEqual([retry.firstSeq, retry.lastSeq], [first.firstSeq, first.lastSeq]);
    t.deepEqual(retry.events.map((e) => e.eventId), [`a-${tier}`, `b-${tier}`]);
    t.false(first.duplicate);
    t.true(retry.duplicate, "the retry says it appended nothing");
    t.is((await server.turns().getThread({ threadId })).thread!.lastSeq, 4n);
    const reuse = await t.throwsAsync(server.events().appendEvents({ threadId, events: [{ eventId: `a-${tier}`, type: "custom" }, { type: "custom" }] }));
    t.is(codeOf(reuse), Code.AlreadyExists);
  });

  test(`${tier}: follow=false delivers history then caught_up and ends`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    await server.events().appendEvents({ threadId, events: Array.from({ length: 30 }, () => ({ type: "message.delta" })) });
    const items = await collectTail((signal) => server.events().tailEvents({ threadId, afterSeq: 10n }, { signal }), () => false);
    t.deepEqual(seqsOf(items), Array.from({ length: 21 }, (_, i) => i + 11));
    const last = items.at(-1)!.item;
    t.is(last.case === "caughtUp" && last.value.lastSeq, 31n);
  });

  test(`${tier}: max_events_per_response delivers the same events in batches, on every protocol, history and live`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    // Past one history page (2,000), and five events near the payload limit: together over a batch's 1 MiB.
    for (let i = 0; i < 3; i++) {
      await server.events().appendEvents({ threadId, events: Array.from({ length: 800 }, (_, k) => ({ type: "message.delta", payload: { k } })) });
    }
    const big = "x".repeat(255_000);
    for (let i = 0; i < 5; i++) await server.events().appendEvents({ threadId, events: [{ type: "blob", payload: { big } }] });
    const lastSeq = 1 + 2400 + 5;
    const oneByOne = await collectTail((signal) => server.events().tailEvents({ threadId }, { signal }), () => false, 60_000);
    const expected = oneByOne.flatMap((i) => (i.item.case === "event" ? [toJson(EventSchema, i.item.value)] : []));
    t.is(expected.length, lastSeq);
    for (const protocol of protocols) {
      // Each protocol's tail appends two live events after the earlier ones'.
      const firstLive = lastSeq + 1 + protocols.indexOf(protocol) * 2;
      let appending: Promise<unknown> | undefined;
      const items = await collectTail(
        (signal) => server.events(protocol).tailEvents({ threadId, follow: true, maxEventsPerResponse: 300 }, { signal }),
        (got) => {
          if (got.at(-1)!.item.case === "caughtUp") {
            appending ??= server.events().appendEvents({ threadId, events: [{ type: "live.one" }, { type: "live.two" }] });
          }
          return batchedSeqsOf(got).at(-1) === firstLive + 1;
        },
        60_000,
      );
      await appending;
      t.false(items.some((i) => i.item.case === "event"), `${protocol}: no lone event responses`);
      const batches = items.flatMap((i) => (i.item.case === "events" ? [i.item.value.events] : []));
      t.true(batches.every((b) => b.length >= 1 && b.length <= 300), `${protocol}: 1 to 300 events a response`);
      t.true(batches.some((b) => b.length === 300), `${protocol}: full batches`);
      // About 1 MiB a response at most (but for a single larger event): the five big events take two or more.
      const sizes = batches.map((events) => toBinary(EventBatchSchema, create(EventBatchSchema, { events })).length);
      t.true(sizes.every((size, i) => size <= 1024 * 1024 || batches[i].length === 1), `${protocol}: batch bytes ${Math.max(...sizes)}`);
      t.true(batches.filter((b) => b.some((e) => e.type === "blob")).length >= 2, `${protocol}: the big events split`);
      const history = items.slice(0, items.findIndex((i) => i.item.case === "caughtUp"));
      const delivered = history.flatMap((i) => (i.item.case === "events" ? i.item.value.events.map((e) => toJson(EventSchema, e)) : []));
      // The history holds the earlier protocols' live events too.
      t.deepEqual(delivered.slice(0, expected.length), expected, `${protocol}: the history, event for event`);
      t.deepEqual(batchedSeqsOf(items), Array.from({ length: firstLive + 1 }, (_, i) => i + 1), `${protocol}: every seq once, live ones last`);
    }
  });

  test(`${tier}: follow delivers live events after caught_up, then heartbeats when idle`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    let appended = false;
    const items = await collectTail(
      (signal) => server.events().tailEvents({ threadId, follow: true }, { signal }),
      (got) => {
        if (got.at(-1)!.item.case === "caughtUp" && !appended) {
          appended = true;
          void server.events().appendEvents({ threadId, events: [{ type: "tool.call.started" }, { type: "tool.call.completed" }] });
        }
        return got.at(-1)!.item.case === "heartbeat" && seqsOf(got).length === 3;
      },
    );
    // Heartbeats may come before the live events on a loaded machine; the order of the rest is fixed.
    t.deepEqual(items.map((i) => i.item.case).filter((c) => c !== "heartbeat"), ["event", "caughtUp", "event", "event"]);
    t.is(items.at(-1)!.item.case, "heartbeat");
    t.deepEqual(seqsOf(items), [1, 2, 3]);
    const hb = items.at(-1)!.item;
    t.is(hb.case === "heartbeat" && hb.value.scannedSeq, 3n);
  });

  // An idle tail on the binary protocols is not woken for its heartbeats (they go out as bytes):
  // the idle check of its thread must still see the thread go, on every protocol.
  test(`${tier}: a following tail whose thread is deleted while it idles ends NOT_FOUND`, async (t) => {
    const server = servers.get(tier)!;
    for (const protocol of protocols) {
      const threadId = await newThread(server);
      let heartbeats = 0;
      let deleting: Promise<unknown> | undefined;
      const ended = collectTail(
        (signal) => server.events(protocol).tailEvents({ threadId, follow: true }, { signal }),
        (got) => {
          if (got.at(-1)!.item.case === "heartbeat" && ++heartbeats === 2) deleting = server.turns().deleteThread({ threadId });
          return false;
        },
        10_000,
      ).then(
        (items) => `ended without an error after ${items.length} items`,
        (err) => codeOf(err),
      );
      t.is(await ended, Code.NotFound, protocol);
      await deleting;
    }
  });

  test(`${tier}: type-prefix and turn filters; heartbeats carry the scanned seq`, async (t) => {
    const server = servers.get(tier)!;
    const { thread, turn } = await server.turns().submitTurn({ input: {} });
    const threadId = thread!.threadId;
    const { leaseId } = await claimTurn(server, threadId); // turn.started: seq 3
    await server.events().appendEvents({ threadId, turnId: turn!.turnId, leaseId, events: [{ type: "message.delta" }, { type: "tool.call.started" }] });
    await server.events().appendEvents({ threadId, events: [{ type: "message.delta" }, { type: "state.snapshot" }] });
    const byType = await collectTail((signal) => server.events().tailEvents({ threadId, types: ["message.", "state"] }, { signal }), () => false);
    t.deepEqual(seqsOf(byType), [4, 6, 7]);
    const byTurn = await collectTail((signal) => server.events().tailEvents({ threadId, turnId: turn!.turnId }, { signal }), () => false);
    t.deepEqual(seqsOf(byTurn), [2, 3, 4, 5]);
    const quiet = await collectTail(
      (signal) => server.events().tailEvents({ threadId, follow: true, types: ["nothing.matches"] }, { signal }),
      (got) => got.at(-1)!.item.case === "heartbeat",
    );
    t.deepEqual(quiet.map((i) => i.item.case), ["caughtUp", "heartbeat"]);
    t.is(quiet[1].item.case === "heartbeat" && quiet[1].item.value.scannedSeq, 7n);
  });

  test(`${tier}: tail errors: unknown thread NOT_FOUND, after_seq past the end OUT_OF_RANGE`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const tailAll = (req: { threadId: string; afterSeq?: bigint }) =>
      collectTail((signal) => server.events().tailEvents(req, { signal }), () => false);
    t.is(codeOf(await t.throwsAsync(tailAll({ threadId: "01ARZ3NDEKTSV4RRFFQ69G5FAV" }))), Code.NotFound);
    t.is(codeOf(await t.throwsAsync(tailAll({ threadId, afterSeq: 2n }))), Code.OutOfRange);
    t.is(codeOf(await t.throwsAsync(tailAll({ threadId, afterSeq: -1n }))), Code.InvalidArgument);
  });

  // Raw requests: a client library enforces the deadline itself and would hide what the server answered.
  test(`${tier}: a follow tail whose deadline passes ends DEADLINE_EXCEEDED, on gRPC and on Connect`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const url = `${server.baseUrl}/eventide.v1.EventService/TailEvents`;
    const body = envelope(toBinary(TailEventsRequestSchema, create(TailEventsRequestSchema, { threadId, follow: true })));
    const grpc = await exchange(url, { "content-type": "application/grpc", te: "trailers", "grpc-timeout": "300m" }, body, { enveloped: true, timeoutMs: 10_000 });
    t.false(grpc.cut, "the server ended the stream");
    t.is(grpc.trailers["grpc-status"], String(Code.DeadlineExceeded));
    const connect = await exchange(url, { "content-type": "application/connect+proto", "connect-protocol-version": "1", "connect-timeout-ms": "300" }, body, { enveloped: true, timeoutMs: 10_000 });
    const end = connect.frames.find((f) => f.flags === 2);
    t.is((JSON.parse(end?.data.toString() ?? "{}") as { error?: { code?: string } }).error?.code, "deadline_exceeded");
  });

  test(`${tier}: cancelling a tail releases its live subscription`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const live = server.tiers.hot.live as unknown as { subscriberCount: number };
    const before = live.subscriberCount;
    const items = await collectTail(
      (signal) => server.events().tailEvents({ threadId, follow: true }, { signal }),
      (got) => got.at(-1)!.item.case === "caughtUp",
    );
    t.is(items.length, 2);
    for (let i = 0; i < 50 && live.subscriberCount !== before; i++) await delay(20);
    t.is(live.subscriberCount, before);
  });
}
