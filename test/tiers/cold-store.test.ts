import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { gzipSync } from "node:zlib";
import test from "ava";
import { archiveKey, decodeArchive, encodeArchive } from "../../server/tiers/cold/archive-format.js";
import { DirectoryColdStore } from "../../server/tiers/cold/directory/directory-cold-store.js";
import { S3ColdStore } from "../../server/tiers/cold/s3/s3-cold-store.js";
import { startS3 } from "../support/s3.js";
import { archivedEvent, coldStoreContract } from "./cold-store.contract.js";

coldStoreContract(test, "s3", async () => {
  const s3 = await startS3();
  await s3.store.ensureBucket(); // again: a bucket that exists is fine
  return { store: s3.store, cleanup: () => s3.stop() };
});

coldStoreContract(test, "directory", async () => {
  const root = await mkdtemp(join(tmpdir(), "eventide-cold-"));
  return { store: new DirectoryColdStore(join(root, "archive")), cleanup: () => rm(root, { recursive: true, force: true }) };
});

test("archiveKey zero-pads seqs to 12 digits", (t) => {
  t.is(archiveKey("acme", "01HZX3", 1, 250), "threads/acme/01HZX3/000000000001-000000000250.jsonl.gz");
  t.is(archiveKey("t_1", "th", 999_999_999_999, 999_999_999_999), "threads/t_1/th/999999999999-999999999999.jsonl.gz");
  t.throws(() => archiveKey("acme", "th", 1, 10 ** 12));
  t.throws(() => archiveKey("acme", "th", -1, 2));
  t.throws(() => archiveKey("acme", "th", 1.5, 2));
  t.throws(() => archiveKey("../etc", "th", 1, 2));
  t.throws(() => archiveKey("acme", "a/b", 1, 2));
});

test("an archive is gzipped JSONL in the proto's JSON form", async (t) => {
  const events = [archivedEvent("th", 1), archivedEvent("th", 3)];
  const lines = (await import("node:zlib")).gunzipSync(encodeArchive(events)).toString().split("\n");
  t.is(lines.length, 3);
  t.is(lines[2], "");
  const first = JSON.parse(lines[0]);
  t.like(first, { eventId: events[0].eventId, threadId: "th", seq: "1", type: "message.delta", level: "info", tenantId: "acme" });
  t.is(first.createdAt, new Date(events[0].createdAt).toISOString());
  t.false("turnId" in JSON.parse(lines[1])); // proto JSON leaves empty fields out
  t.deepEqual(await collect(decodeArchive(Readable.from([encodeArchive([])]))), []);
});

test("decodeArchive names the bad line, and fails on a truncated object", async (t) => {
  const good = (await import("node:zlib")).gunzipSync(encodeArchive([archivedEvent("th", 1)])).toString();
  const bad = gzipSync(`${good}{"seq": "not a number"}\n`);
  await t.throwsAsync(collect(decodeArchive(Readable.from([bad]))), { message: /^archive line 2:/ });
  const whole = encodeArchive(Array.from({ length: 200 }, (_, i) => archivedEvent("th", i + 1)));
  await t.throwsAsync(collect(decodeArchive(Readable.from([whole.subarray(0, whole.length - 20)]))));
});

test("the directory store refuses keys that are not plain relative paths", async (t) => {
  const root = await mkdtemp(join(tmpdir(), "eventide-cold-"));
  try {
    const store = new DirectoryColdStore(join(root, "archive"));
    for (const key of ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "", "a b", "a\\b", "x.tmp-0a1b"]) {
      await t.throwsAsync(store.put(key, Buffer.from("x")), { message: /bad cold object key/ }, key);
      await t.throwsAsync(store.get(key), { message: /bad cold object key/ }, key);
    }
    t.deepEqual(await readdir(root), []); // nothing was written anywhere
    await t.throwsAsync(store.list("../"));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("the directory store lists no temp files of writes in progress", async (t) => {
  const root = await mkdtemp(join(tmpdir(), "eventide-cold-"));
  try {
    const store = new DirectoryColdStore(root);
    await store.put("a/b", Buffer.from("x"));
    const { writeFile } = await import("node:fs/promises");
    await writeFile(join(root, "a", "c.tmp-0123abcd"), "partial");
    t.deepEqual(await store.list(""), ["a/b"]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test("an unreachable S3 endpoint fails ping", async (t) => {
  const store = new S3ColdStore({ endpoint: "http://127.0.0.1:1", bucket: "b", region: "us-east-1", forcePathStyle: true, maxAttempts: 1, accessKeyId: "x", secretAccessKey: "y" });
  try {
    await t.throwsAsync(store.ping());
  } finally {
    store.close();
  }
});

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
