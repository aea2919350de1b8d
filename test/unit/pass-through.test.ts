// passThrough stands in for `async function* () { try { yield* inner } catch … finally … }`
// in the stream interceptors: the same messages, the same errors, and its end hook
// where the generator's finally would run.
import test from "ava";
import { passThrough } from "../../server/interceptors/pass-through.js";

async function* numbers(upTo: number, failAt?: number, log?: string[]): AsyncGenerator<number> {
  try {
    for (let i = 1; i <= upTo; i++) {
      if (i === failAt) throw new Error(`failed at ${i}`);
      yield i;
    }
  } finally {
    log?.push("inner finally");
  }
}

test("passes every message through and ends once, when the stream is done", async (t) => {
  let ends = 0;
  const got: number[] = [];
  const stream = passThrough(numbers(3), { end: () => ends++ });
  for await (const n of stream) got.push(n);
  t.deepEqual(got, [1, 2, 3]);
  t.is(ends, 1);
  const it = stream[Symbol.asyncIterator]();
  t.deepEqual(await it.next(), { done: true, value: undefined }, "pulled again after the end: still done");
  t.is(ends, 1);
});

test("maps what the stream throws, and ends", async (t) => {
  let ends = 0;
  const stream = passThrough(numbers(3, 2), { mapError: (err) => new Error(`mapped: ${(err as Error).message}`), end: () => ends++ });
  const got: number[] = [];
  await t.throwsAsync(
    async () => {
      for await (const n of stream) got.push(n);
    },
    { message: "mapped: failed at 2" },
  );
  t.deepEqual(got, [1]);
  t.is(ends, 1);
});

test("a consumer that leaves early returns the inner stream (its finally runs) and ends once", async (t) => {
  const log: string[] = [];
  const stream = passThrough(numbers(10, undefined, log), { end: () => log.push("end") });
  for await (const n of stream) if (n === 2) break;
  t.deepEqual(log, ["inner finally", "end"]);
});

test("a return that waits for a pending pull, as a generator's does", async (t) => {
  const log: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  async function* slow(): AsyncGenerator<number> {
    try {
      await gate;
      yield 1;
      yield 2;
    } finally {
      log.push("inner finally");
    }
  }
  const it = passThrough(slow(), { end: () => log.push("end") })[Symbol.asyncIterator]();
  const pulled = it.next();
  const returned = it.return!(undefined);
  release();
  t.deepEqual(await pulled, { done: false, value: 1 });
  t.deepEqual(await returned, { done: true, value: undefined });
  t.deepEqual(log, ["inner finally", "end"]);
});

test("a stream returned before its first pull is never opened and does not end (as a generator never started)", async (t) => {
  let opened = false;
  let ends = 0;
  const inner: AsyncIterable<number> = {
    [Symbol.asyncIterator]() {
      opened = true;
      return numbers(1);
    },
  };
  const it = passThrough(inner, { end: () => ends++ })[Symbol.asyncIterator]();
  t.deepEqual(await it.return!(undefined), { done: true, value: undefined });
  t.false(opened);
  t.is(ends, 0);
});

test("completed runs once, after end, when the inner stream finishes by itself; what it throws ends the stream; not on a return", async (t) => {
  const log: string[] = [];
  const finishing = passThrough(numbers(2), { end: () => log.push("end"), completed: () => log.push("completed") });
  const got: number[] = [];
  for await (const n of finishing) got.push(n);
  t.deepEqual(got, [1, 2]);
  t.deepEqual(await finishing.next(), { done: true, value: undefined });
  t.deepEqual(log, ["end", "completed"], "once, after end, and not again on a pull after the end");

  const refusing = passThrough(numbers(1), {
    completed: () => {
      throw new Error("ended by the shutdown");
    },
  });
  t.deepEqual(await refusing.next(), { done: false, value: 1 });
  await t.throwsAsync(refusing.next(), { message: "ended by the shutdown" });

  const returned: string[] = [];
  const left = passThrough(numbers(3), { end: () => returned.push("end"), completed: () => returned.push("completed") });
  await left.next();
  await left.return(undefined);
  t.deepEqual(returned, ["end"]);
});
