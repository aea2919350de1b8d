// The TypeScript client's resume logic, against scripted in-memory servers
// (createRouterTransport): gaps are re-read, duplicates dropped, transient
// errors retried from the last seq, terminal codes end the tail.
import test from "ava";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { EventService, type TailEventsRequest, type TailEventsResponse, TailEventsResponseSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { EventSchema } from "../../gen/eventide/v1/resources_pb.js";
import { createEventideClient, TailCursor } from "../../clients/typescript/src/index.js";

const threadId = "01JABCDEFGHJKMNPQRSTVWXYZ0";
const fast = { initialMs: 1, maxMs: 5 };

const event = (seq: number): TailEventsResponse => create(TailEventsResponseSchema, { item: { case: "event", value: create(EventSchema, { seq: BigInt(seq), threadId, type: "x" }) } });
const batch = (...seqs: number[]): TailEventsResponse =>
  create(TailEventsResponseSchema, { item: { case: "events", value: { events: seqs.map((s) => create(EventSchema, { seq: BigInt(s), threadId, type: "x" })) } } });
const caughtUp = (lastSeq: number): TailEventsResponse => create(TailEventsResponseSchema, { item: { case: "caughtUp", value: { lastSeq: BigInt(lastSeq) } } });
const heartbeat = (scannedSeq: number): TailEventsResponse => create(TailEventsResponseSchema, { item: { case: "heartbeat", value: { scannedSeq: BigInt(scannedSeq) } } });

/** A server whose n-th TailEvents call plays the n-th script: items, then an error (or the end, or a hang). */
type Script = { items: TailEventsResponse[]; then?: ConnectError | "end" | "hang" };

function scripted(scripts: Script[]) {
  const requests: TailEventsRequest[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(EventService, {
      async *tailEvents(req, ctx) {
        const script = scripts[requests.length] ?? { items: [], then: "hang" };
        requests.push(req);
        for (const item of script.items) yield item;
        if (script.then instanceof ConnectError) throw script.then;
        if (script.then === "hang" || script.then === undefined) {
          await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
        }
      },
    });
  });
  return { client: createEventideClient(transport), requests };
}

/** Reads a tail until it holds `n` events (or ends), then aborts it. */
async function take(tail: AsyncIterable<{ seq: bigint }>, n: number, controller: AbortController): Promise<number[]> {
  const seqs: number[] = [];
  for await (const e of tail) {
    seqs.push(Number(e.seq));
    if (seqs.length >= n) controller.abort();
  }
  return seqs;
}

test("cursor: the next seq is delivered, a repeated one is a duplicate, a skipped one a gap", (t) => {
  const c = new TailCursor(0, false);
  t.is(c.accept(1), "deliver");
  t.is(c.accept(1), "duplicate");
  t.is(c.accept(3), "gap");
  t.is(c.position, 1);
  t.is(c.scanned(1), "ok");
  t.is(c.scanned(2), "gap", "an unfiltered tail told seq 2 was scanned must have had it");
  const f = new TailCursor(5, true);
  t.is(f.accept(9), "deliver", "filters skip seqs");
  t.is(f.scanned(20), "ok");
  t.is(f.position, 20, "a filtered tail resumes after the scanned seq");
  t.is(f.accept(20), "duplicate");
});

test("a gap ends the stream and the tail re-reads after its last seq: every seq once, in order", async (t) => {
  const { client, requests } = scripted([{ items: [event(1), event(2), event(4), event(5)] }, { items: [batch(3, 4, 5), caughtUp(5)] }]);
  const gaps: [number, number][] = [];
  const controller = new AbortController();
  const tail = client.tail(threadId, { signal: controller.signal, backoff: fast, onGap: (e, g) => gaps.push([e, g]) });
  t.deepEqual(await take(tail, 5, controller), [1, 2, 3, 4, 5]);
  t.deepEqual(requests.map((r) => Number(r.afterSeq)), [0, 2]);
  t.deepEqual(gaps, [[3, 4]]);
  t.is(tail.state.gaps, 1);
});

test("a duplicate is dropped, not yielded", async (t) => {
  const { client } = scripted([{ items: [event(1), event(2), batch(2, 3), event(1), event(4)] }]);
  const dropped: number[] = [];
  const controller = new AbortController();
  const tail = client.tail(threadId, { afterSeq: 0, signal: controller.signal, onDuplicate: (s) => dropped.push(s) });
  t.deepEqual(await take(tail, 4, controller), [1, 2, 3, 4]);
  t.deepEqual(dropped, [2, 1]);
  t.is(tail.state.duplicates, 2);
});

test("UNAVAILABLE, DEADLINE_EXCEEDED and a stream that just ends are retried from the last delivered seq", async (t) => {
  const { client, requests } = scripted([
    { items: [event(1)], then: new ConnectError("server going away", Code.Unavailable) },
    { items: [], then: new ConnectError("slow", Code.DeadlineExceeded) },
    { items: [event(2), caughtUp(2)], then: "end" },
    { items: [event(2), event(3)] },
  ]);
  const reconnects: number[] = [];
  const controller = new AbortController();
  const tail = client.tail(threadId, { signal: controller.signal, backoff: fast, onReconnect: (i) => reconnects.push(i.afterSeq) });
  t.deepEqual(await take(tail, 3, controller), [1, 2, 3]);
  t.deepEqual(requests.map((r) => Number(r.afterSeq)), [0, 1, 1, 2]);
  t.deepEqual(reconnects, [1, 1, 2]);
  t.is(tail.state.reconnects, 3);
});

test("a filtered tail resumes after the heartbeat's scanned seq", async (t) => {
  const { client, requests } = scripted([
    { items: [event(3), caughtUp(7), heartbeat(10)], then: new ConnectError("restart", Code.Unavailable) },
    { items: [event(12)] },
  ]);
  const heartbeats: number[] = [];
  const controller = new AbortController();
  const tail = client.tail(threadId, { types: ["message."], signal: controller.signal, backoff: fast, onHeartbeat: (s) => heartbeats.push(s) });
  t.deepEqual(await take(tail, 2, controller), [3, 12]);
  t.deepEqual(requests.map((r) => Number(r.afterSeq)), [0, 10]);
  t.deepEqual(requests[0].types, ["message."]);
  t.deepEqual(heartbeats, [10]);
});

for (const code of [Code.NotFound, Code.PermissionDenied, Code.Unauthenticated, Code.InvalidArgument, Code.OutOfRange]) {
  test(`${Code[code]} ends the tail with the error, no retry`, async (t) => {
    const { client, requests } = scripted([{ items: [event(1)], then: new ConnectError("no", code) }, { items: [event(2)] }]);
    const seqs: number[] = [];
    const err = await t.throwsAsync(async () => {
      for await (const e of client.tail(threadId, { backoff: fast })) seqs.push(Number(e.seq));
    });
    t.is(ConnectError.from(err).code, code);
    t.deepEqual(seqs, [1]);
    t.is(requests.length, 1);
  });
}

test("an abort ends the tail cleanly, also while it waits to reconnect", async (t) => {
  const { client } = scripted([{ items: [event(1)], then: new ConnectError("down", Code.Unavailable) }]);
  const controller = new AbortController();
  const seqs: number[] = [];
  const tail = client.tail(threadId, {
    signal: controller.signal,
    backoff: { initialMs: 60_000, maxMs: 60_000 },
    onReconnect: () => controller.abort(),
  });
  for await (const e of tail) seqs.push(Number(e.seq));
  t.deepEqual(seqs, [1]);
});

test("a history-only tail (follow: false) ends at caught-up", async (t) => {
  const { client, requests } = scripted([{ items: [batch(1, 2), caughtUp(2)], then: "hang" }]);
  const seqs: number[] = [];
  for await (const e of client.tail(threadId, { follow: false })) seqs.push(Number(e.seq));
  t.deepEqual(seqs, [1, 2]);
  t.false(requests[0].follow);
});

test("a silent stream (no event, no heartbeat) is presumed dead and replaced", async (t) => {
  const { client, requests } = scripted([{ items: [event(1)], then: "hang" }, { items: [event(2)] }]);
  const controller = new AbortController();
  const tail = client.tail(threadId, { signal: controller.signal, idleTimeoutMs: 200, backoff: fast });
  t.deepEqual(await take(tail, 2, controller), [1, 2]);
  t.deepEqual(requests.map((r) => Number(r.afterSeq)), [0, 1]);
});
