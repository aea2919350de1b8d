// A caught-up tail that takes live events as bytes (direct delivery) and goes
// idle: while its thread holds nothing after its cursor, heartbeats go out as
// bytes and its handler is not woken; once the thread holds more (a live
// notification that never came), or the client is not keeping up, it wakes
// and catches up from storage itself.
import test from "ava";
import { setTimeout as delay } from "node:timers/promises";
import type { StoredEvent } from "../../server/domain/records.js";
import { LiveSubscription, type LiveDelivery } from "../../server/live/subscription.js";

const idleMs = 40;

/** A thread whose live feed never publishes, its last seq as storage has it, and a client that takes bytes while `accepting`. */
function quietThread(lastSeq: number) {
  const thread = { lastSeq, accepting: true, idleAsked: [] as [string, number][], wrote: [] as string[] };
  const delivery: LiveDelivery = {
    writer: {
      written: 0,
      write(bytes: Buffer) {
        if (!thread.accepting) return false;
        thread.wrote.push(bytes.toString());
        return true;
      },
    },
    frames: (events: StoredEvent[]) => ({ bytes: Buffer.from(`events ${events.map((e) => e.seq).join(",")}`), responses: events.length }),
    async idle(threadId, cursor) {
      thread.idleAsked.push([threadId, cursor]);
      return thread.lastSeq > cursor ? undefined : Buffer.from(`heartbeat ${cursor}`);
    },
  };
  const subscription = new LiveSubscription({ subscribe: () => () => {} }, "thread-1", 100, idleMs, delivery);
  return { thread, delivery, subscription };
}

/** Resolves with the wake, or "still waiting" after `ms`. */
function within<T>(wait: Promise<T>, ms: number): Promise<T | "still waiting"> {
  return Promise.race([wait, delay(ms).then(() => "still waiting" as const)]);
}

test("idle with nothing new: heartbeats go out as bytes, the wait goes on, and the wake later reports them", async (t) => {
  const { thread, delivery, subscription } = quietThread(5);
  t.teardown(() => subscription.close());
  const startedAt = Date.now();
  const wake = subscription.next(startedAt, new AbortController().signal, 5);
  t.is(await within(wake, 6 * idleMs), "still waiting");
  t.true(thread.wrote.length >= 2, `heartbeats written: ${thread.wrote.join(" | ")}`);
  t.true(thread.wrote.every((w) => w === "heartbeat 5"));
  t.is(delivery.writer.written, thread.wrote.length);
  t.deepEqual(thread.idleAsked[0], ["thread-1", 5]);

  // The thread now holds seq 6, which no live notification announced: the next idle check wakes the tail.
  thread.lastSeq = 6;
  const woke = await within(wake, 10 * idleMs);
  if (woke === "still waiting") return t.fail("the tail was not woken to catch up");
  t.is(woke.kind, "idle");
  t.is(woke.delivered?.cursor, 5, "the cursor the heartbeats scanned to");
  t.true(woke.delivered!.at > startedAt, "the last heartbeat counts as the last item sent");
});

test("idle while the client is not keeping up: the tail wakes instead of writing", async (t) => {
  const { thread, subscription } = quietThread(3);
  t.teardown(() => subscription.close());
  thread.accepting = false;
  const woke = await within(subscription.next(Date.now(), new AbortController().signal, 3), 10 * idleMs);
  if (woke === "still waiting") return t.fail("the tail was not woken");
  t.is(woke.kind, "idle");
  t.is(woke.delivered, undefined);
  t.deepEqual(thread.wrote, []);
});

test("an idle check that answers after the wait ended writes nothing", async (t) => {
  const { thread, delivery, subscription } = quietThread(2);
  t.teardown(() => subscription.close());
  let answer!: (frame: Buffer | undefined) => void;
  delivery.idle = () => new Promise((resolve) => (answer = resolve));
  const abort = new AbortController();
  const wake = subscription.next(Date.now(), abort.signal, 2);
  for (let i = 0; i < 50 && !answer; i++) await delay(idleMs / 4);
  t.truthy(answer, "the idle check was asked");
  abort.abort();
  t.is((await wake).kind, "idle");
  answer(Buffer.from("heartbeat 2"));
  await delay(idleMs);
  t.deepEqual(thread.wrote, []);
});

test("live events written directly meanwhile move the silence on: no idle check until the interval passes again", async (t) => {
  const { thread, subscription } = quietThread(1);
  t.teardown(() => subscription.close());
  const wake = subscription.next(Date.now(), new AbortController().signal, 1);
  // Events 2..3 published to the subscription (as the fan-out does), written as bytes.
  (subscription as unknown as { push(u: StoredEvent[]): void }).push([{ seq: 2 } as StoredEvent, { seq: 3 } as StoredEvent]);
  thread.lastSeq = 3;
  t.deepEqual(thread.wrote, ["events 2,3"]);
  t.is(await within(wake, 4 * idleMs), "still waiting");
  t.true(thread.idleAsked.every(([, cursor]) => cursor === 3), `idle checks at cursor 3 only: ${JSON.stringify(thread.idleAsked)}`);
  t.true(thread.wrote.slice(1).every((w) => w === "heartbeat 3"));
});
