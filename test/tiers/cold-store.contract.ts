// The cold tier's contract: one suite, run on S3 (s3rver) and on a directory.
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { isDeepStrictEqual } from "node:util";
import type { TestFn } from "ava";
import { ulid } from "ulid";
import type { StoredEvent } from "../../server/domain/records.js";
import { archiveKey, decodeArchive, encodeArchive, sha256Hex } from "../../server/tiers/cold/archive-format.js";
import { ColdObjectMissing, type ColdStore } from "../../server/tiers/cold/cold-store.js";

const levels = ["debug", "info", "warn", "error"] as const;

export function archivedEvent(threadId: string, seq: number): StoredEvent {
  return {
    eventId: `${threadId}-${seq}`, // not ulid(): 50,000 of those take seconds
    threadId,
    turnId: seq % 3 === 0 ? "" : `turn-${Math.ceil(seq / 10)}`,
    seq,
    type: seq % 2 ? "message.delta" : "tool.call.completed",
    payload: {
      text: `héllo 👋 世界 «${seq}» "quoted"\nnew line\ttab \\ back`,
      nested: { list: [1, 2.5, -3e-7, true, false, null, "x", { deep: [[]] }], empty: {} },
      n: seq,
      nothing: null,
    },
    metadata: seq % 4 === 0 ? {} : { correlation_id: `c-${seq}`, agent_id: "ägent-1" },
    schemaVersion: seq % 5 === 0 ? 3 : 1,
    createdAt: 1_700_000_000_000 + seq * 7 + (seq % 1000), // ms precision
    tenantId: "acme",
    level: levels[seq % levels.length],
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Runs `work` over the items, `width` at a time. */
async function inParallel<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: width }, lane));
}

let big: { threadId: string; events: StoredEvent[]; body: Buffer } | undefined;

/** 50,000 events and their archive, built once for every store. */
function bigArchive() {
  if (!big) {
    const threadId = ulid();
    const events = Array.from({ length: 50_000 }, (_, i) => archivedEvent(threadId, i + 1));
    big = { threadId, events, body: encodeArchive(events) };
  }
  return big;
}

export function coldStoreContract(test: TestFn, name: string, open: () => Promise<{ store: ColdStore; cleanup(): Promise<void> }>) {
  let store: ColdStore;
  let cleanup: () => Promise<void>;
  test.before(async () => {
    ({ store, cleanup } = await open());
  });
  test.after.always(async () => cleanup?.());

  /** Every test works under its own prefix, so they run concurrently. */
  const prefix = () => `test/${ulid()}`;

  test(`${name}: ping and describe`, async (t) => {
    await t.notThrowsAsync(store.ping());
    t.regex(store.describe, /^(s3|directory) \(.+\)$/);
  });

  test(`${name}: put and get round-trip binary data; put overwrites`, async (t) => {
    const key = `${prefix()}/bytes.bin`;
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const body = Buffer.concat([all, randomBytes(100_000), all]);
    await store.put(key, body);
    t.true((await readAll(await store.get(key))).equals(body));
    const empty = `${prefix()}/empty`;
    await store.put(empty, Buffer.alloc(0));
    t.is((await readAll(await store.get(empty))).length, 0);
    await store.put(key, Buffer.from("second"));
    t.is((await readAll(await store.get(key))).toString(), "second");
    t.deepEqual(await store.verify(key), { key, bytes: 6, sha256: sha256Hex(Buffer.from("second")) });
  });

  test(`${name}: a 20 MiB object (multipart on S3) round-trips byte-identical and verifies`, async (t) => {
    const key = `${prefix()}/big.bin`;
    const body = randomBytes(20 * 1024 * 1024);
    await store.put(key, body);
    const back = await readAll(await store.get(key));
    t.is(back.length, body.length);
    t.true(back.equals(body));
    t.deepEqual(await store.verify(key), { key, bytes: body.length, sha256: sha256Hex(body) });
  });

  test(`${name}: a missing object throws ColdObjectMissing and verifies as undefined`, async (t) => {
    const key = `${prefix()}/missing.jsonl.gz`;
    const err = await t.throwsAsync(store.get(key), { instanceOf: ColdObjectMissing });
    t.is(err?.key, key);
    t.is(await store.verify(key), undefined);
  });

  test(`${name}: list returns the keys under a prefix, sorted`, async (t) => {
    const p = prefix();
    const inside = [`${p}/b/2`, `${p}/a/000000000002-x`, `${p}/a/000000000001-x`, `${p}/b/1/deep/er`, `${p}/c`];
    const outside = [`${p}x/a`, `${p}-sibling`];
    for (const key of [...inside, ...outside]) await store.put(key, Buffer.from(key));
    t.deepEqual(await store.list(`${p}/`), [...inside].sort());
    t.deepEqual(await store.list(`${p}/a/`), [`${p}/a/000000000001-x`, `${p}/a/000000000002-x`]);
    t.deepEqual(await store.list(`${p}/a/000000000002`), [`${p}/a/000000000002-x`]);
    t.deepEqual(await store.list(`${p}/b`), [`${p}/b/1/deep/er`, `${p}/b/2`]);
    t.deepEqual(await store.list(p), [...inside, ...outside].sort());
    t.deepEqual(await store.list(`${p}/nothing/`), []);
  });

  test(`${name}: list pages past 1,000 keys and delete batches them`, async (t) => {
    const p = prefix();
    const keys = Array.from({ length: 1050 }, (_, i) => `${p}/${String(i).padStart(5, "0")}`);
    await inParallel(keys, 25, (key) => store.put(key, Buffer.from("x")));
    const listed = await store.list(`${p}/`);
    t.is(listed.length, 1050);
    t.deepEqual(listed, keys);
    await store.delete(keys);
    t.deepEqual(await store.list(`${p}/`), []);
  });

  test(`${name}: delete removes several keys; absent keys are fine`, async (t) => {
    const p = prefix();
    const [k1, k2, k3] = [`${p}/1`, `${p}/2`, `${p}/deeper/3`];
    for (const key of [k1, k2, k3]) await store.put(key, Buffer.from(key));
    await store.delete([k1, `${p}/never-was`, k3, `${p}/no/such/dir`]);
    t.deepEqual(await store.list(`${p}/`), [k2]);
    await t.throwsAsync(store.get(k1), { instanceOf: ColdObjectMissing });
    await store.delete([k1, k3]); // again: already gone
    await store.delete([]);
    t.deepEqual(await store.list(`${p}/`), [k2]);
    await store.put(k3, Buffer.from("back")); // a pruned directory comes back
    t.is((await readAll(await store.get(k3))).toString(), "back");
  });

  test(`${name}: an archive round-trips through the store`, async (t) => {
    const threadId = ulid();
    const events = Array.from({ length: 40 }, (_, i) => archivedEvent(threadId, i + 1));
    const body = encodeArchive(events);
    const key = archiveKey("acme", threadId, 1, 40);
    await store.put(key, body);
    t.deepEqual(await store.verify(key), { key, bytes: body.length, sha256: sha256Hex(body) });
    const back: StoredEvent[] = [];
    for await (const e of decodeArchive(await store.get(key))) back.push(e);
    t.deepEqual(back, events);
    t.true(back.some((e) => e.turnId === "") && back.some((e) => e.turnId !== ""));
  });

  test(`${name}: a 50,000-event archive decodes by streaming`, async (t) => {
    const { threadId, events, body } = bigArchive();
    const count = events.length;
    const key = archiveKey("acme", threadId, 1, count);
    await store.put(key, body);
    let n = 0;
    let mismatches = 0;
    for await (const e of decodeArchive(await store.get(key))) {
      if (!isDeepStrictEqual(e, events[n])) mismatches++;
      n++;
    }
    t.is(n, count);
    t.is(mismatches, 0);

    // Leaving early releases the object's stream.
    const source = await store.get(key);
    const first: number[] = [];
    for await (const e of decodeArchive(source)) {
      first.push(e.seq);
      if (first.length === 3) break;
    }
    t.deepEqual(first, [1, 2, 3]);
    // Not events.once: the source is destroyed with an AbortError, which it would reject on.
    if (!source.destroyed) await new Promise((resolve) => source.once("close", resolve));
    t.true(source.destroyed);
  });
}
