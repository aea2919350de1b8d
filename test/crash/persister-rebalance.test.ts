// Fault injection: three persisters (child processes, two lanes each) over
// eight partitions, killed and restarted again and again while appends go on,
// so partitions keep changing hands mid-read and mid-commit. Afterwards every
// acknowledged event is in Postgres exactly once, each thread contiguous from
// seq 1, and reads stitch the same log back.
import test from "ava";
import type { ChildProcess } from "node:child_process";
import { setTimeout as delay } from "node:timers/promises";
import { newEvent } from "../support/events.js";
import { kill, spawnRole } from "../support/child.js";
import { expectPersistedOnce, openRealTiers } from "../support/tiers.js";

const threads = 12;
const persisters = 3;
const chaosRounds = 14;

/** A fixed pseudo-random sequence: the same kills in the same order on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
}

test("persisters killed and restarted while partitions move lose no acknowledged event and write none twice", async (t) => {
  t.timeout(150_000); // ~15 s of kills, then the catch-up, on a loaded machine
  const real = await openRealTiers({
    EVENTIDE_PARTITIONS: "8",
    EVENTIDE_PERSIST_LANES: "2",
    EVENTIDE_PERSIST_BATCH: "25",
    EVENTIDE_HOT_WINDOW: "8",
  });
  const running: (ChildProcess | undefined)[] = new Array(persisters);
  t.teardown(async () => {
    for (const child of running) if (child) await kill(child);
    await real.cleanup();
  });
  const { hot } = real.tiers;
  const acknowledged = new Map<string, number>();
  for (let i = 0; i < threads; i++) {
    const threadId = hot.newThreadId();
    const res = await hot.append({ tenantId: "acme", threadId, create: { metadata: {} }, events: [newEvent("thread.created")] });
    acknowledged.set(threadId, res.thread.lastSeq);
  }
  const ids = [...acknowledged.keys()];

  let loading = true;
  const load = (async () => {
    for (let n = 0; loading; n++) {
      const threadId = ids[n % threads];
      const res = await hot.append({ tenantId: "acme", threadId, events: Array.from({ length: 1 + (n % 5) }, () => newEvent()) });
      acknowledged.set(threadId, Math.max(acknowledged.get(threadId)!, res.thread.lastSeq));
      if (n % 10 === 0) await delay(3);
    }
  })();

  const next = random(15);
  for (let i = 0; i < persisters; i++) running[i] = spawnRole("persister", real.env);
  let kills = 0;
  for (let round = 0; round < chaosRounds; round++) {
    await delay(500 + Math.floor(next() * 700));
    const slot = Math.floor(next() * persisters);
    // Mostly SIGKILL (pending entries left behind); now and then a clean stop (partitions released).
    await kill(running[slot]!, next() < 0.75 ? "SIGKILL" : "SIGTERM");
    kills++;
    // Sometimes the slot stays empty a while, so the others take its partitions first.
    if (next() < 0.4) await delay(300 + Math.floor(next() * 900));
    running[slot] = spawnRole("persister", real.env);
  }
  loading = false;
  await load;

  const total = await expectPersistedOnce(t, real, acknowledged);
  t.true(kills === chaosRounds && total > 1_000, `persisted ${total} events across ${kills} kills`);
  for (const threadId of ids.slice(0, 3)) {
    const stitched = await real.log.read(threadId, 0, 100_000);
    t.deepEqual(stitched.map((e) => e.seq), Array.from({ length: acknowledged.get(threadId)! }, (_, i) => i + 1));
  }
});
