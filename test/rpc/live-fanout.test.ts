// Live fan-out: a thread's live events are framed once and written as bytes to
// every tail of the thread that is caught up (the wire path), while tails that
// cannot take them so (a client not reading, a filter, Connect's own path) get
// them through their generator or from storage. Whatever path each took, every
// tail sees every seq once, in order.
import test from "ava";
import http2 from "node:http2";
import { setTimeout as delay } from "node:timers/promises";
import type { TailEventsResponse } from "../../gen/eventide/v1/event_service_pb.js";
import { type Protocol, serverPerTier, type TestServer, tierKinds } from "../support/server.js";
import { rawTail, type RawTail } from "../support/raw-tail.js";
import type { ThreadFanout } from "../../server/live/fanout.js";

const servers = serverPerTier(test, { EVENTIDE_HEARTBEAT_MS: "200", EVENTIDE_TAIL_BUFFER: "50" });

const waitMs = 60_000;

async function newThread(server: TestServer): Promise<string> {
  const { thread } = await server.turns().createThread({});
  return thread!.threadId;
}

/** Appends `batches` batches of 1 to 5 events of about `payloadBytes` each; the thread's last seq then. */
async function appendBatches(server: TestServer, threadId: string, batches: number, payloadBytes = 300): Promise<number> {
  let last = 0;
  const filler = "x".repeat(payloadBytes);
  for (let b = 0; b < batches; b++) {
    const size = 1 + ((b * 7) % 5);
    const res = await server.events().appendEvents({
      threadId,
      events: Array.from({ length: size }, (_, i) => ({ type: "message.delta", payload: { b, i, filler } })),
    });
    last = Number(res.lastSeq);
  }
  return last;
}

async function until(what: string, done: () => boolean): Promise<void> {
  for (const deadline = Date.now() + waitMs; !done(); await delay(20)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

/** A tail through a Connect client, collecting seqs until told to stop. */
function clientTail(server: TestServer, protocol: Protocol, threadId: string, maxEventsPerResponse = 0) {
  const controller = new AbortController();
  const responses: TailEventsResponse[] = [];
  const seqs: number[] = [];
  const running = (async () => {
    try {
      for await (const res of server.events(protocol).tailEvents({ threadId, follow: true, maxEventsPerResponse }, { signal: controller.signal })) {
        responses.push(res);
        if (res.item.case === "event") seqs.push(Number(res.item.value.seq));
        else if (res.item.case === "events") for (const e of res.item.value.events) seqs.push(Number(e.seq));
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
  })();
  return { protocol, responses, seqs, running, stop: () => controller.abort() };
}

const caughtUp = (responses: TailEventsResponse[]) => responses.some((r) => r.item.case === "caughtUp");
const oneToN = (seqs: number[], n: number) => seqs.length === n && seqs.every((s, i) => s === i + 1);

async function bufferDrops(server: TestServer): Promise<number> {
  const metric = await server.core.metrics.fanoutDrops.get();
  return metric.values.find((v) => v.labels.reason === "buffer")?.value ?? 0;
}

for (const tier of tierKinds) {
  test.serial(`${tier}: many tails of a thread get every seq once, in order, while one client stops reading and catches up later`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const fast = http2.connect(server.baseUrl);
    // The slow client's window is tiny and it reads nothing until the appends are done.
    const slow = http2.connect(server.baseUrl, { settings: { initialWindowSize: 1024 } });
    t.teardown(() => {
      fast.destroy();
      slow.destroy();
    });
    const raw: RawTail[] = Array.from({ length: 6 }, () => rawTail(fast, { threadId, follow: true }));
    const clients = (["grpc", "grpc-web", "connect", "connect-http1"] as Protocol[]).map((p) => clientTail(server, p, threadId));
    const laggard = rawTail(slow, { threadId, follow: true });
    await until("every tail caught up", () => [...raw, laggard].every((r) => caughtUp(r.responses)) && clients.every((c) => caughtUp(c.responses)));
    laggard.stream.pause();
    const dropsBefore = await bufferDrops(server);

    const last = await appendBatches(server, threadId, 120);
    t.true(last > 300, `appended through seq ${last}`);
    await until("the reading tails got every event", () => raw.every((r) => r.seqs().length >= last) && clients.every((c) => c.seqs.length >= last));
    t.true((await bufferDrops(server)) > dropsBefore, "the slow client's live events were dropped (it catches up from storage)");
    laggard.stream.resume();
    await until("the slow tail caught up", () => laggard.seqs().length >= last);

    for (const [i, r] of raw.entries()) t.true(oneToN(r.seqs(), last), `raw tail ${i}: 1..${last} once each, in order`);
    for (const c of clients) t.true(oneToN(c.seqs, last), `${c.protocol} tail: 1..${last} once each, in order`);
    t.true(oneToN(laggard.seqs(), last), `the slow tail: 1..${last} once each, in order`);
    for (const c of clients) c.stop();
    await Promise.all(clients.map((c) => c.running));
  });

  test.serial(`${tier}: live events that arrive together come in one batch when the tail asked for batches`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const session = http2.connect(server.baseUrl);
    t.teardown(() => session.destroy());
    const wire = rawTail(session, { threadId, follow: true, maxEventsPerResponse: 4 });
    const clients = (["grpc", "connect-http1"] as Protocol[]).map((p) => clientTail(server, p, threadId, 4));
    await until("every tail caught up", () => caughtUp(wire.responses) && clients.every((c) => caughtUp(c.responses)));
    // Five batches of 7: each arrives together, so it goes out as a batch of 4 and one of 3 (or, merged with the next, of 4).
    let last = 0;
    for (let b = 0; b < 5; b++) {
      const res = await server.events().appendEvents({ threadId, events: Array.from({ length: 7 }, (_, i) => ({ type: "message.delta", payload: { b, i } })) });
      last = Number(res.lastSeq);
    }
    await until("every tail got every event", () => wire.seqs().length >= last && clients.every((c) => c.seqs.length >= last));
    for (const [name, responses, seqs] of [["wire", wire.responses, wire.seqs()], ...clients.map((c) => [c.protocol, c.responses, c.seqs] as const)] as const) {
      t.true(oneToN(seqs, last), `${name}: 1..${last} once each, in order`);
      const live = responses.slice(responses.findIndex((r) => r.item.case === "caughtUp") + 1).filter((r) => r.item.case === "events");
      t.false(responses.some((r) => r.item.case === "event"), `${name}: batches only`);
      t.true(
        live.every((r) => r.item.case === "events" && r.item.value.events.length >= 1 && r.item.value.events.length <= 4),
        `${name}: live batches of 1 to 4`,
      );
      t.true(live.length < last - 1, `${name}: live events came several to a response (${live.length} responses for ${last - 1} events)`);
    }
    for (const c of clients) c.stop();
    await Promise.all(clients.map((c) => c.running));
  });

  test.serial(`${tier}: a tail whose client resets its stream, or drops its connection, mid-stream does not disturb the others`, async (t) => {
    const server = servers.get(tier)!;
    const threadId = await newThread(server);
    const shared = http2.connect(server.baseUrl);
    const doomed = http2.connect(server.baseUrl);
    t.teardown(() => {
      shared.destroy();
      doomed.destroy();
    });
    const keep = Array.from({ length: 4 }, () => rawTail(shared, { threadId, follow: true }));
    const reset = Array.from({ length: 3 }, () => rawTail(shared, { threadId, follow: true }));
    const dropped = Array.from({ length: 3 }, () => rawTail(doomed, { threadId, follow: true }));
    await until("every tail caught up", () => [...keep, ...reset, ...dropped].every((r) => caughtUp(r.responses)));
    const appending = appendBatches(server, threadId, 150, 100);
    // Gone while events are being written to them: mid-append, several times over.
    await until("the first live events", () => keep[0].seqs().length > 20);
    reset[0].stream.close(http2.constants.NGHTTP2_CANCEL);
    dropped[0].stream.destroy();
    await until("more live events", () => keep[0].seqs().length > 150);
    reset[1].stream.close(http2.constants.NGHTTP2_CANCEL);
    doomed.destroy();
    reset[2].stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    const last = await appending;
    await until("the remaining tails got every event", () => keep.every((r) => r.seqs().length >= last));
    for (const [i, r] of keep.entries()) t.true(oneToN(r.seqs(), last), `tail ${i}: 1..${last} once each, in order`);
    for (const r of [...reset, ...dropped]) {
      const seqs = r.seqs();
      t.true(seqs.every((s, i) => s === i + 1), "a gone tail got a prefix, in order, with no duplicate");
    }
    // The server let go of the gone tails: the thread's live feed holds only the remaining ones.
    const fanout = server.tiers.hot.live as ThreadFanout;
    await until("the server dropped the gone tails", () => fanout.subscribersOf(threadId) === keep.length);
    t.pass();
  });
}
