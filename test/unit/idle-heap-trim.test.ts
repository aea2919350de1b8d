// When the process goes quiet, V8's memory saver mode goes on (so a memory-reducing GC gives the
// heap a burst grew back); busy again, it goes off at once.
import test from "ava";
import { pino } from "pino";
import { Writable } from "node:stream";
import { Metrics } from "../../server/observability/metrics.js";
import { IdleHeapTrimmer, trimHeapWhenIdle } from "../../server/runtime/idle-heap-trim.js";

function trimmer(idleAfterMs = 5_000, sampleMs = 1_000) {
  const calls: boolean[] = [];
  const t = new IdleHeapTrimmer({ idleAfterMs, sampleMs }, (on) => calls.push(on));
  const feed = (...shares: number[]) => shares.forEach((s) => t.sample(s));
  return { t, calls, feed };
}

test("a whole window of quiet turns memory saver mode on, once", (t) => {
  const { calls, feed } = trimmer();
  feed(0.01, 0, 0.02, 0.01);
  t.deepEqual(calls, [], "four quiet seconds of five are not enough");
  feed(0.01);
  t.deepEqual(calls, [true]);
  feed(0, 0, 0.03, 0.01, 0, 0);
  t.deepEqual(calls, [true], "quiet on: nothing more to do");
});

test("one busy sample turns it off, and the quiet then counts again from zero", (t) => {
  const { t: trim, calls, feed } = trimmer();
  feed(0, 0, 0, 0, 0);
  feed(0.6);
  t.deepEqual(calls, [true, false]);
  t.false(trim.saving);
  feed(0, 0, 0, 0);
  t.deepEqual(calls, [true, false], "not back on before a new whole window of quiet");
  feed(0);
  t.deepEqual(calls, [true, false, true]);
});

test("moderate load over the last five samples turns it off, whatever the window", (t) => {
  const { calls, feed } = trimmer(30_000);
  feed(...Array<number>(30).fill(0.01));
  t.deepEqual(calls, [true]);
  feed(0.18, 0.18, 0.18, 0.18);
  t.deepEqual(calls, [true], "the last five average 0.146");
  feed(0.18);
  t.deepEqual(calls, [true, false], "five samples at 0.18: busy, though the 30 s window's mean is 0.04");
});

test("moderate load over the window turns it off; a heartbeat round of idle tails does not", (t) => {
  const { calls, feed } = trimmer();
  feed(0, 0, 0, 0, 0);
  feed(0.06, 0.35, 0.2);
  t.deepEqual(calls, [true], "mean 0.12 over the window, no sample at 0.5: still quiet enough");
  feed(0.3);
  t.deepEqual(calls, [true, false], "mean 0.18: busy");
});

test("a process that is never quiet never turns it on", (t) => {
  const { calls, feed } = trimmer();
  for (let i = 0; i < 50; i++) feed(0.04, 0.04, 0.2, 0.04, 0.04);
  t.deepEqual(calls, []);
  feed(0.3, 0.9, 1, 0.5);
  t.deepEqual(calls, []);
});

test("a window shorter than a sample is one sample", (t) => {
  const { calls, feed } = trimmer(200, 1_000);
  feed(0.2);
  t.deepEqual(calls, []);
  feed(0.01);
  t.deepEqual(calls, [true]);
});

test("the process's own loop: quiet turns it on (logged and counted); the abort turns it off and stops the sampling", async (t) => {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  const log = pino({ level: "info" }, sink);
  const metrics = new Metrics();
  const gauge = async () => (await metrics.heapMemorySaver.get()).values[0]?.value;
  const stop = new AbortController();
  trimHeapWhenIdle({ idleAfterMs: 300, sampleMs: 50 }, log, stop.signal, metrics);
  const deadline = Date.now() + 10_000;
  while (!lines.some((l) => l.includes("memory saver mode on")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.true(lines.some((l) => l.includes("memory saver mode on")), lines.join(""));
  t.is(await gauge(), 1);
  t.is((await metrics.heapTrims.get()).values[0]?.value, 1);
  stop.abort();
  t.is(await gauge(), 0);
  const seen = lines.length;
  await new Promise((r) => setTimeout(r, 300));
  t.is(lines.length, seen, "no sampling after the abort");
});

test("0 turns it off altogether", async (t) => {
  const lines: string[] = [];
  const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
  const stop = new AbortController();
  trimHeapWhenIdle({ idleAfterMs: 0, sampleMs: 20 }, pino({ level: "info" }, sink), stop.signal);
  await new Promise((r) => setTimeout(r, 200));
  stop.abort();
  t.deepEqual(lines, []);
});
