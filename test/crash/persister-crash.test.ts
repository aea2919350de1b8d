// The persister as a child process under load, killed with SIGKILL again and
// again mid-batch: afterwards every thread in agent_events holds exactly
// seqs 1..N, each once, and every thread row says last_seq N.
import test from "ava";
import { newEvent } from "../support/events.js";
import { kill, spawnRole } from "../support/child.js";
import { expectPersistedOnce, openRealTiers } from "../support/tiers.js";
import { setTimeout as delay } from "node:timers/promises";

const threads = 8;

test("SIGKILLed persisters lose nothing and write nothing twice", async (t) => {
  // Three lanes over four partitions: one lane reads two of them, and redone batches meet rows already there.
  const real = await openRealTiers({ EVENTIDE_PERSIST_BATCH: "20", EVENTIDE_HOT_WINDOW: "10", EVENTIDE_PERSIST_LANES: "3" });
  t.teardown(() => real.cleanup());
  const { hot } = real.tiers;
  const ids: string[] = [];
  for (let i = 0; i < threads; i++) {
    const threadId = hot.newThreadId();
    await hot.append({ tenantId: "acme", threadId, create: { metadata: {} }, events: [newEvent("thread.created")] });
    ids.push(threadId);
  }

  let loading = true;
  const load = (async () => {
    for (let n = 0; loading; n++) {
      const threadId = ids[n % threads];
      await hot.append({ tenantId: "acme", threadId, events: Array.from({ length: 1 + (n % 7) }, () => newEvent()) });
      if (n % 20 === 0) await delay(2);
    }
  })();

  let kills = 0;
  for (let round = 0; round < 6; round++) {
    const child = spawnRole("persister", real.env);
    await delay(1_200 + round * 150);
    await kill(child);
    kills++;
  }
  loading = false;
  await load;

  const final = spawnRole("persister", real.env);
  t.teardown(() => kill(final));
  const expected = new Map<string, number>();
  for (const id of ids) expected.set(id, (await hot.getThread(id))!.lastSeq);
  const total = await expectPersistedOnce(t, real, expected);
  t.true(kills === 6 && total > 500, `persisted ${total} events across ${kills} kills`);
  // The hot window was trimmed behind the persister, and reads still stitch 1..N.
  const sample = ids[0];
  const stitched = await real.log.read(sample, 0, 100_000);
  t.deepEqual(stitched.map((e) => e.seq), Array.from({ length: expected.get(sample)! }, (_, i) => i + 1));
  t.true((await hot.read(sample, 0, 100_000)).length < expected.get(sample)!, "hot stream was trimmed");
});
