// The shared timer behind idle tails' heartbeats: entries fire once, not
// before their time, a moved entry fires at its new time only, and a
// cancelled one never.
import test from "ava";
import { setTimeout as delay } from "node:timers/promises";
import { TimerWheel } from "../../server/live/timer-wheel.js";

function entry() {
  const e = { firedAt: [] as number[], fire: () => e.firedAt.push(Date.now()), wheelSlot: undefined as number | undefined };
  return e;
}

async function until(done: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !done(); await delay(5)) if (Date.now() > deadline) throw new Error("timed out");
}

test("entries fire once each, none before its time", async (t) => {
  const wheel = new TimerWheel(10);
  const start = Date.now();
  const entries = [30, 5, 60, 0, 45].map((ms) => ({ ms, e: entry() }));
  for (const { ms, e } of entries) wheel.schedule(e, start + ms);
  await until(() => entries.every(({ e }) => e.firedAt.length > 0));
  await delay(50);
  for (const { ms, e } of entries) {
    t.is(e.firedAt.length, 1, `the ${ms} ms entry fired once`);
    t.true(e.firedAt[0] >= start + ms, `the ${ms} ms entry did not fire early`);
  }
  t.is(wheel.size, 0);
});

test("a rescheduled entry fires at its new time only; a cancelled one never", async (t) => {
  const wheel = new TimerWheel(10);
  const start = Date.now();
  const moved = entry();
  const cancelled = entry();
  const witness = entry();
  wheel.schedule(moved, start + 20);
  wheel.schedule(moved, start + 80);
  wheel.schedule(cancelled, start + 20);
  wheel.cancel(cancelled);
  wheel.schedule(witness, start + 120);
  await until(() => witness.firedAt.length > 0);
  t.is(moved.firedAt.length, 1);
  t.true(moved.firedAt[0] >= start + 80, "the moved entry fired at its new time");
  t.is(cancelled.firedAt.length, 0);
});

test("an entry that schedules itself again from fire() fires again", async (t) => {
  const wheel = new TimerWheel(5);
  let fired = 0;
  const again = {
    wheelSlot: undefined as number | undefined,
    fire() {
      if (++fired < 3) wheel.schedule(again, Date.now() + 10);
    },
  };
  wheel.schedule(again, Date.now() + 10);
  await until(() => fired === 3);
  await delay(40);
  t.is(fired, 3);
});
