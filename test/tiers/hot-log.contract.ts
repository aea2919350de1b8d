// The hot tier's contract: one suite, run against every implementation.
import type { TestFn } from "ava";
import { ulid } from "ulid";
import { EventIdConflict, NotFound, StaleExpectedSeq } from "../../server/domain/errors.js";
import type { TurnRecord } from "../../server/domain/records.js";
import { type HotLog, scopeOfIdempotencyKey } from "../../server/tiers/hot/hot-log.js";
import { newEvent } from "../support/events.js";

export function hotLogContract(test: TestFn, name: string, open: () => Promise<HotLog>) {
  let hot: HotLog;
  test.before(async () => {
    hot = await open();
  });
  test.after.always(async () => {
    await hot?.close();
  });

  async function newThread(tenantId = "acme") {
    const threadId = hot.newThreadId();
    const res = await hot.append({ tenantId, threadId, create: { metadata: { k: "v" } }, events: [newEvent("thread.created")] });
    return { threadId, res };
  }

  test(`${name}: create assigns seq 1 and records the thread`, async (t) => {
    const { threadId, res } = await newThread();
    t.is(res.kind, "appended");
    if (res.kind !== "appended") return;
    t.is(res.events[0].seq, 1);
    t.is(res.thread.lastSeq, 1);
    const thread = await hot.getThread(threadId);
    t.like(thread, { threadId, tenantId: "acme", lastSeq: 1, status: "idle", metadata: { k: "v" } });
    t.true(thread!.createdAt > Date.now() - 60_000);
  });

  test(`${name}: appends get consecutive seqs and read back in order`, async (t) => {
    const { threadId } = await newThread();
    const a = await hot.append({ tenantId: "acme", threadId, events: [newEvent(), newEvent(), newEvent()] });
    const b = await hot.append({ tenantId: "acme", threadId, events: [newEvent("tool.call.started")] });
    t.deepEqual(a.kind === "appended" && a.events.map((e) => e.seq), [2, 3, 4]);
    t.deepEqual(b.kind === "appended" && b.events.map((e) => e.seq), [5]);
    const all = await hot.read(threadId, 0, 100);
    t.deepEqual(all.map((e) => e.seq), [1, 2, 3, 4, 5]);
    t.deepEqual(all[4].type, "tool.call.started");
    t.deepEqual(all[2].payload, { delta: "hi" });
    t.deepEqual((await hot.read(threadId, 3, 1)).map((e) => e.seq), [4]);
    t.deepEqual(await hot.read(threadId, 5, 10), []);
  });

  test(`${name}: concurrent appends never skip or reuse a seq`, async (t) => {
    const { threadId } = await newThread();
    await Promise.all(
      Array.from({ length: 40 }, () => hot.append({ tenantId: "acme", threadId, events: [newEvent(), newEvent()] })),
    );
    const all = await hot.read(threadId, 0, 1000);
    t.deepEqual(all.map((e) => e.seq), Array.from({ length: 81 }, (_, i) => i + 1));
    t.is((await hot.getThread(threadId))!.lastSeq, 81);
  });

  test(`${name}: unknown thread and another tenant's thread are NotFound`, async (t) => {
    const { threadId } = await newThread("acme");
    await t.throwsAsync(hot.append({ tenantId: "acme", threadId: ulid(), events: [newEvent()] }), { instanceOf: NotFound });
    await t.throwsAsync(hot.append({ tenantId: "globex", threadId, events: [newEvent()] }), { instanceOf: NotFound });
    t.is((await hot.getThread(threadId))!.lastSeq, 1);
  });

  test(`${name}: expected_last_seq mismatch writes nothing`, async (t) => {
    const { threadId } = await newThread();
    const err = await t.throwsAsync(hot.append({ tenantId: "acme", threadId, expectedLastSeq: 7, events: [newEvent()] }), {
      instanceOf: StaleExpectedSeq,
    });
    t.is((err as StaleExpectedSeq).actual, 1);
    const ok = await hot.append({ tenantId: "acme", threadId, expectedLastSeq: 1, events: [newEvent()] });
    t.is(ok.kind === "appended" && ok.events[0].seq, 2);
    t.is((await hot.read(threadId, 0, 10)).length, 2);
  });

  test(`${name}: a retried batch with client event ids returns the original seqs`, async (t) => {
    const { threadId } = await newThread();
    const ids = [ulid(), ulid()];
    const batch = () => ids.map((eventId) => newEvent("custom", { eventId, clientSuppliedId: true }));
    const first = await hot.append({ tenantId: "acme", threadId, events: batch() });
    const retry = await hot.append({ tenantId: "acme", threadId, expectedLastSeq: 1, events: batch() });
    t.is(first.kind, "appended");
    t.is(retry.kind, "duplicate-events");
    if (retry.kind !== "duplicate-events") return;
    t.deepEqual(retry.events.map((e) => [e.eventId, e.seq]), [[ids[0], 2], [ids[1], 3]]);
    t.is((await hot.getThread(threadId))!.lastSeq, 3);
    // Reusing one id beside a new one is not a retry.
    await t.throwsAsync(
      hot.append({ tenantId: "acme", threadId, events: [batch()[0], newEvent("custom", { clientSuppliedId: true })] }),
      { instanceOf: EventIdConflict },
    );
    // Nor is reusing it in another thread, in the same partition or another one.
    const found = await hot.findEvent("acme", ids[0]);
    t.like(found, { threadId, seq: 2, type: "custom" });
    for (const sibling of [hot.newThreadId(threadId), hot.newThreadId()]) {
      await hot.append({ tenantId: "acme", threadId: sibling, create: { metadata: {} }, events: [newEvent("thread.created")] });
      await t.throwsAsync(hot.append({ tenantId: "acme", threadId: sibling, events: batch() }), { instanceOf: EventIdConflict });
      t.is((await hot.getThread(sibling))!.lastSeq, 1);
    }
    t.is((await hot.getThread(threadId))!.lastSeq, 3);
  });

  test(`${name}: a submitted turn is recorded and its idempotency key returns it again`, async (t) => {
    const { threadId } = await newThread();
    const turnId = ulid();
    const turn: Omit<TurnRecord, "submittedSeq"> = {
      turnId,
      threadId,
      tenantId: "acme",
      status: "queued",
      input: { text: "hello" },
      error: "",
      attempt: 0,
      agentId: "",
      idempotencyKey: "k-1",
      metadata: {},
      createdAt: 0,
      updatedAt: 0,
    };
    const submit = (id: string) =>
      hot.append({
        tenantId: "acme",
        threadId,
        submit: { turn: { ...turn, turnId: id }, idempotencyKey: "k-1" },
        events: [newEvent("turn.submitted", { turnId: id })],
      });
    const first = await submit(turnId);
    t.is(first.kind, "appended");
    t.like(first.kind === "appended" && first.turn, { turnId, submittedSeq: 2, status: "queued" });
    t.is(first.thread.status, "busy");
    const again = await submit(ulid());
    t.is(again.kind, "duplicate-turn");
    t.like(again.kind === "duplicate-turn" && again.turn, { turnId, submittedSeq: 2, input: { text: "hello" } });
    t.is((await hot.getThread(threadId))!.lastSeq, 2);
    t.like(await hot.getTurn(turnId), { turnId, threadId, submittedSeq: 2 });
    t.like(await hot.getTurn(turnId, "acme"), { turnId, threadId, submittedSeq: 2 });
    t.is(await hot.getTurn(turnId, "globex"), undefined, "another tenant's turn is not found");
    t.is(await hot.getTurn(ulid()), undefined);
    // Events may name the turn; an unknown turn writes nothing.
    const withTurn = await hot.append({ tenantId: "acme", threadId, turnId, events: [newEvent("message.delta", { turnId })] });
    t.is(withTurn.kind === "appended" && withTurn.events[0].turnId, turnId);
    await t.throwsAsync(hot.append({ tenantId: "acme", threadId, turnId: ulid(), events: [newEvent()] }), { instanceOf: NotFound });
    t.is((await hot.getThread(threadId))!.lastSeq, 3);
  });

  test(`${name}: idempotent submit that creates its thread returns the first thread`, async (t) => {
    const key = `new-${ulid()}`;
    const submitNew = async () => {
      const scope = scopeOfIdempotencyKey("acme", "", key);
      const threadId = hot.newThreadId(scope);
      const turnId = ulid();
      return hot.append({
        tenantId: "acme",
        threadId,
        create: { metadata: {} },
        submit: {
          turn: { turnId, threadId, tenantId: "acme", status: "queued", input: {}, error: "", attempt: 0, agentId: "",
            idempotencyKey: key, metadata: {}, createdAt: 0, updatedAt: 0 },
          idempotencyKey: key,
        },
        events: [newEvent("thread.created"), newEvent("turn.submitted", { turnId })],
      });
    };
    const first = await submitNew();
    const second = await submitNew();
    t.is(first.kind, "appended");
    t.is(second.kind, "duplicate-turn");
    t.is(second.thread.threadId, first.thread.threadId);
    t.is(second.kind === "duplicate-turn" && second.turn.turnId, first.kind === "appended" ? first.turn!.turnId : "");
  });

  test(`${name}: live subscribers get appends in seq order`, async (t) => {
    const { threadId } = await newThread();
    const seen: number[] = [];
    const done = new Promise<void>((resolve) => {
      const off = hot.live.subscribe(threadId, (update) => {
        if (update === "resync") return;
        for (const e of update) seen.push(e.seq);
        if (seen.includes(6)) {
          off();
          resolve();
        }
      });
    });
    for (let i = 0; i < 5; i++) await hot.append({ tenantId: "acme", threadId, events: [newEvent()] });
    await done;
    // The feed may still carry seq 1, appended just before subscribing; the tail dedupes by seq.
    t.deepEqual(seen.filter((s) => s >= 2), [2, 3, 4, 5, 6]);
    t.true(seen.every((s, i) => i === 0 || s > seen[i - 1]));
  });

  test(`${name}: findEvent finds any event of the tenant by id`, async (t) => {
    const { threadId } = await newThread();
    const res = await hot.append({ tenantId: "acme", threadId, events: [newEvent("custom", { metadata: { a: "b" } })] });
    if (res.kind !== "appended") return t.fail();
    const id = res.events[0].eventId;
    t.like(await hot.findEvent("acme", id), { eventId: id, threadId, seq: 2, metadata: { a: "b" }, tenantId: "acme", level: "info" });
    t.is(await hot.findEvent("acme", ulid()), undefined);
    t.is(await hot.findEvent("globex", id), undefined, "another tenant's event is not found");
  });

  test(`${name}: client event ids are per tenant: two tenants use one id, each gets its own event, retries dedupe per tenant`, async (t) => {
    const acme = await newThread("acme");
    // globex's threads: one in acme's partition, the others wherever their ids fall (every partition, most likely).
    const globexThreads = [hot.newThreadId(acme.threadId), ...Array.from({ length: 7 }, () => hot.newThreadId())];
    for (const [k, threadId] of globexThreads.entries()) {
      await hot.append({ tenantId: "globex", threadId, create: { metadata: {} }, events: [newEvent("thread.created")] });
      const ids = [`shared-${k}-${ulid()}`, `shared-${k}-${ulid()}`];
      const batch = (who: string) => ids.map((eventId) => newEvent("custom", { eventId, clientSuppliedId: true, payload: { who } }));
      const ours = await hot.append({ tenantId: "acme", threadId: acme.threadId, events: batch("acme") });
      const theirs = await hot.append({ tenantId: "globex", threadId, events: batch("globex") });
      t.is(ours.kind, "appended");
      t.is(theirs.kind, "appended", "another tenant's id is neither a retry nor a conflict");
      if (ours.kind !== "appended" || theirs.kind !== "appended") return;
      t.deepEqual(theirs.events.map((e) => [e.eventId, e.seq, e.threadId, e.tenantId]), [[ids[0], 2, threadId, "globex"], [ids[1], 3, threadId, "globex"]]);
      // A retry returns the tenant's own originals.
      for (const [tenantId, tid, first] of [["acme", acme.threadId, ours], ["globex", threadId, theirs]] as const) {
        const retry = await hot.append({ tenantId, threadId: tid, events: batch(tenantId) });
        if (retry.kind !== "duplicate-events") return t.fail(`${tenantId}: ${retry.kind}`);
        t.deepEqual(retry.events.map((e) => [e.eventId, e.seq, e.threadId]), first.events.map((e) => [e.eventId, e.seq, e.threadId]), tenantId);
        t.like(await hot.findEvent(tenantId, ids[1]), { threadId: tid, seq: first.events[1].seq, payload: { who: tenantId } });
      }
      t.is(await hot.findEvent("initech", ids[0]), undefined);
    }
    t.is((await hot.getThread(acme.threadId))!.lastSeq, 1 + 2 * globexThreads.length);
    for (const threadId of globexThreads) t.is((await hot.getThread(threadId))!.lastSeq, 3);
    // Within globex, its id on another of its threads is a conflict that names only globex's thread.
    const used = (await hot.read(globexThreads[0], 1, 1))[0].eventId;
    const err = await t.throwsAsync(
      hot.append({ tenantId: "globex", threadId: globexThreads[1], events: [newEvent("custom", { eventId: used, clientSuppliedId: true })] }),
      { instanceOf: EventIdConflict },
    );
    t.true(err!.message.includes(globexThreads[0]), err!.message);
    t.false(err!.message.includes(acme.threadId), err!.message);
    t.is((await hot.getThread(globexThreads[1]))!.lastSeq, 3);
  });

  test(`${name}: deleting a thread frees its client event ids in the tenant's index`, async (t) => {
    const { threadId } = await newThread("acme");
    const eventId = `gone-${ulid()}`;
    const event = () => [newEvent("custom", { eventId, clientSuppliedId: true })];
    await hot.append({ tenantId: "acme", threadId, events: event() });
    t.like(await hot.findEvent("acme", eventId), { threadId, seq: 2 });
    await hot.deleteThread(threadId);
    t.is(await hot.findEvent("acme", eventId), undefined);
    // Left in the index, the id would still be a conflict (it named the deleted thread).
    const next = await newThread("acme");
    const reused = await hot.append({ tenantId: "acme", threadId: next.threadId, events: event() });
    t.is(reused.kind, "appended");
  });
}
