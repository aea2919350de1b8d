// The tail loop on its own, with storage and the live feed in memory: history,
// caught-up, live; a gap in the live feed filled from storage with the rest of
// that wake after it (no gap, no duplicate); the tail's end while storage is
// being read; a storage error ends it with that error. Each ends with the live
// subscription gone.
import test from "ava";
import { setTimeout as delay } from "node:timers/promises";
import type { StoredEvent } from "../../server/domain/records.js";
import { tail, type TailItem } from "../../server/reads/tail.js";

const threadId = "thread-1";

function event(seq: number, type = "message.delta"): StoredEvent {
  return { eventId: `e${seq}`, threadId, turnId: "", seq, type, payload: {}, metadata: {}, schemaVersion: 1, createdAt: 0, tenantId: "t", level: "info" };
}

/** A thread's storage (pages of two events) and live feed, both in memory; `pause` holds storage reads until `resume`. */
function memoryThread(stored: number) {
  const thread = {
    stored: Array.from({ length: stored }, (_, i) => event(i + 1)),
    subscribers: new Set<(update: StoredEvent[] | "resync") => void>(),
    paused: undefined as Promise<void> | undefined,
    resume: () => {},
    failing: undefined as Error | undefined,
    reads: 0,
  };
  const reader = {
    async *scanPages(_threadId: string, afterSeq: number) {
      thread.reads++;
      let at = afterSeq;
      for (;;) {
        if (thread.paused) await thread.paused;
        if (thread.failing) throw thread.failing;
        const page = thread.stored.filter((e) => e.seq > at).slice(0, 2);
        if (page.length === 0) return;
        at = page[page.length - 1].seq;
        yield page;
      }
    },
  };
  const live = {
    subscribe(_threadId: string, onUpdate: (update: StoredEvent[] | "resync") => void) {
      thread.subscribers.add(onUpdate);
      return () => thread.subscribers.delete(onUpdate);
    },
  };
  const publish = (seqs: number[]) => {
    for (const s of seqs) if (!thread.stored.some((e) => e.seq === s)) thread.stored.push(event(s));
    thread.stored.sort((a, b) => a.seq - b.seq);
    for (const subscriber of thread.subscribers) subscriber(seqs.map((s) => event(s)));
  };
  const pause = () => {
    thread.paused = new Promise<void>((resolve) => (thread.resume = () => ((thread.paused = undefined), resolve())));
  };
  return { thread, reader, live, publish, pause };
}

function open(m: ReturnType<typeof memoryThread>, opts: { afterSeq?: number; follow?: boolean; types?: string[] } = {}, signal = new AbortController().signal) {
  return tail(
    { threadId, afterSeq: opts.afterSeq ?? 0, follow: opts.follow ?? true, types: opts.types ?? [], turnId: "" },
    { reader: m.reader, live: m.live, heartbeatMs: 60_000, bufferBound: 100 },
    signal,
  );
}

/** An item as the seqs it carries, or its kind and seq. */
function shape(item: TailItem): string {
  switch (item.kind) {
    case "events":
      return `events ${item.events.map((e) => e.seq).join(",")}`;
    case "live":
      return `live ${item.events.map((e) => e.seq).join(",")}`;
    case "caught-up":
      return `caught-up ${item.lastSeq}`;
    case "heartbeat":
      return `heartbeat ${item.scannedSeq}`;
  }
}

async function take(items: AsyncIterator<TailItem>, n: number): Promise<string[]> {
  const taken: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await items.next();
    if (r.done) break;
    taken.push(shape(r.value));
  }
  return taken;
}

test("history a page at a time, caught-up, then live; not following, it ends after caught-up and never subscribes", async (t) => {
  const m = memoryThread(3);
  const following = open(m);
  t.deepEqual(await take(following, 3), ["events 1,2", "events 3", "caught-up 3"]);
  const next = following.next();
  m.publish([4, 5]);
  t.is(shape((await next).value as TailItem), "live 4,5");
  await following.return!();
  t.is(m.thread.subscribers.size, 0);

  const once = open(m, { afterSeq: 3, follow: false });
  t.deepEqual(await take(once, 5), ["events 4,5", "caught-up 5"]);
  t.true((await once.next()).done);
  t.is(m.thread.subscribers.size, 0);
});

test("a gap in the live feed: what came before it goes out live, storage fills the gap, then the rest of that wake, each seq once", async (t) => {
  const m = memoryThread(2);
  const items = open(m);
  t.deepEqual(await take(items, 2), ["events 1,2", "caught-up 2"]);
  // 4 and 5 are stored but never announced; 3 and 6 are announced together.
  m.thread.stored.push(event(4), event(5));
  const next = items.next();
  m.publish([3, 6]);
  t.is(shape((await next).value as TailItem), "live 3");
  // Storage reads from 3 to its end (6 included), so the wake's 6 is not sent again.
  t.deepEqual(await take(items, 2), ["events 4,5", "events 6"]);
  const later = items.next();
  m.publish([7]);
  t.is(shape((await later).value as TailItem), "live 7");
  await items.return!();
});

test("after a gap that storage cannot fill yet, the event that found it goes on, as the loop did", async (t) => {
  const m = memoryThread(1);
  const items = open(m);
  t.deepEqual(await take(items, 2), ["events 1", "caught-up 1"]);
  const next = items.next();
  // Announced but not (yet) in storage: 2 is missing there.
  for (const subscriber of m.thread.subscribers) subscriber([event(3), event(4)]);
  t.is(shape((await next).value as TailItem), "live 3,4");
  await items.return!();
  t.is(m.thread.subscribers.size, 0);
});

test("a filtered tail sends the live events it matches and moves its cursor past the others", async (t) => {
  const m = memoryThread(0);
  const items = open(m, { types: ["tool."] });
  t.deepEqual(await take(items, 1), ["caught-up 0"]);
  const next = items.next();
  for (const subscriber of m.thread.subscribers) subscriber([event(1), event(2, "tool.call"), event(3)]);
  t.is(shape((await next).value as TailItem), "live 2");
  const later = items.next();
  for (const subscriber of m.thread.subscribers) subscriber([event(4, "tool.result")]);
  t.is(shape((await later).value as TailItem), "live 4", "no gap was seen at 4: the cursor had moved past 3");
  t.is(m.thread.reads, 1);
  await items.return!();
});

test("returned while a storage page is being read: the pending pull ends without an item, and the tail unsubscribes", async (t) => {
  const m = memoryThread(4);
  const items = open(m);
  t.deepEqual(await take(items, 1), ["events 1,2"]);
  m.pause();
  const pending = items.next();
  await delay(10);
  const returned = items.return!();
  m.thread.resume();
  await returned;
  t.deepEqual(await pending, { done: true, value: undefined });
  t.true((await items.next()).done);
  t.is(m.thread.subscribers.size, 0);
});

test("a storage error ends the tail with that error, and the tail unsubscribes", async (t) => {
  const m = memoryThread(2);
  m.thread.failing = new Error("storage is down");
  const items = open(m);
  await t.throwsAsync(items.next(), { message: "storage is down" });
  t.is(m.thread.subscribers.size, 0);
  t.true((await items.next()).done);
});

test("the signal ends a tail that waits for the live feed", async (t) => {
  const m = memoryThread(1);
  const call = new AbortController();
  const items = open(m, {}, call.signal);
  t.deepEqual(await take(items, 2), ["events 1", "caught-up 1"]);
  const waiting = items.next();
  call.abort();
  t.deepEqual(await waiting, { done: true, value: undefined });
  t.is(m.thread.subscribers.size, 0);
});
