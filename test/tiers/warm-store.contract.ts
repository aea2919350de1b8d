// The warm tier's contract: one suite, run on real Postgres and on embedded PGlite.
import type { TestFn } from "ava";
import type { JsonObject } from "@bufbuild/protobuf";
import { ulid } from "ulid";
import type { StoredEvent } from "../../server/domain/records.js";
import type { WarmStore } from "../../server/tiers/warm/warm-store.js";
import { PersistGap } from "../../server/domain/errors.js";

function event(threadId: string, seq: number, over: Partial<StoredEvent> = {}): StoredEvent {
  return {
    eventId: ulid(),
    threadId,
    turnId: "",
    seq,
    type: "message.delta",
    payload: { delta: `d${seq}` },
    metadata: { correlation_id: "c" },
    schemaVersion: 1,
    createdAt: 1_700_000_000_000 + seq,
    tenantId: "acme",
    level: "info",
    ...over,
  };
}

export function warmStoreContract(test: TestFn, name: string, open: () => Promise<{ store: WarmStore; cleanup(): Promise<void> }>) {
  let store: WarmStore;
  let cleanup: () => Promise<void>;
  test.before(async () => {
    ({ store, cleanup } = await open());
  });
  test.after.always(async () => cleanup?.());

  function thread(n: number, tenantId = "acme") {
    const threadId = ulid();
    const events = [event(threadId, 1, { type: "thread.created", payload: { metadata: { project: "x" } }, tenantId })];
    for (let s = 2; s <= n; s++) events.push(event(threadId, s, { tenantId }));
    return { threadId, events };
  }

  test.serial(`${name}: a batch persists events and the thread projection`, async (t) => {
    const { threadId, events } = thread(5);
    await store.persistBatch(events);
    const read = await store.read(threadId, 0, 100);
    t.deepEqual(read, events);
    t.deepEqual((await store.read(threadId, 3, 1)).map((e) => e.seq), [4]);
    t.like(await store.getThread(threadId), { threadId, tenantId: "acme", lastSeq: 5, status: "idle", metadata: { project: "x" } });
  });

  test.serial(`${name}: redelivered and overlapping batches change nothing twice`, async (t) => {
    const { threadId, events } = thread(6);
    await store.persistBatch(events.slice(0, 4));
    await store.persistBatch(events.slice(2, 5));
    await store.persistBatch(events);
    await store.persistBatch(events.slice(1, 3));
    t.deepEqual((await store.read(threadId, 0, 100)).map((e) => e.seq), [1, 2, 3, 4, 5, 6]);
    t.like(await store.getThread(threadId), { lastSeq: 6, metadata: { project: "x" } });
  });

  // The hot tier checks ids per partition: two threads of one tenant on two partitions can take one new id at once.
  test.serial(`${name}: an id one tenant used on two threads at once is kept on both, no event dropped`, async (t) => {
    const a = thread(3);
    const b = thread(3);
    b.events[2] = { ...b.events[2], eventId: a.events[2].eventId };
    await store.persistBatch([...a.events, ...b.events]);
    t.deepEqual((await store.read(a.threadId, 0, 10)).map((e) => e.eventId), a.events.map((e) => e.eventId));
    t.deepEqual((await store.read(b.threadId, 0, 10)).map((e) => e.eventId), b.events.map((e) => e.eventId));
    t.truthy(await store.findEvent("acme", a.events[2].eventId));
  });

  // The warm log never takes a hole: last_seq means "every seq up to here is stored".
  test.serial(`${name}: a batch that would leave a hole is refused whole, naming every gap`, async (t) => {
    const a = thread(8);
    const b = thread(3);
    await store.persistBatch(a.events.slice(0, 3));
    const gapsOf = async (events: StoredEvent[], namedThrough?: Map<string, number>) => {
      const err = await t.throwsAsync(store.persistBatch(events, namedThrough), { instanceOf: PersistGap });
      return err!.gaps;
    };
    // Past the persisted seq + 1, a skip inside the batch, and a new thread that does not start at 1.
    const bothGaps = [{ threadId: a.threadId, fromSeq: 4, toSeq: 4 }, { threadId: b.threadId, fromSeq: 1, toSeq: 1 }];
    t.deepEqual(await gapsOf([...a.events.slice(4, 6), ...b.events.slice(1)]), bothGaps.sort((x, y) => x.threadId.localeCompare(y.threadId)));
    t.deepEqual(await gapsOf([a.events[3], a.events[5]]), [{ threadId: a.threadId, fromSeq: 5, toSeq: 5 }]);
    // Entries that named seqs the batch does not hold (their events were no longer in the hot tier).
    t.deepEqual(await gapsOf([a.events[3]], new Map([[a.threadId, 7]])), [{ threadId: a.threadId, fromSeq: 5, toSeq: 7 }]);
    t.deepEqual(await gapsOf([], new Map([[b.threadId, 2]])), [{ threadId: b.threadId, fromSeq: 1, toSeq: 2 }]);
    // Nothing of the refused batches was written.
    t.deepEqual((await store.read(a.threadId, 0, 100)).map((e) => e.seq), [1, 2, 3]);
    t.is((await store.getThread(a.threadId))!.lastSeq, 3);
    t.is(await store.getThread(b.threadId), undefined);
    // Named seqs already stored are no gap (a redelivered entry whose events were trimmed after commit).
    await store.persistBatch([], new Map([[a.threadId, 3]]));
    await store.persistBatch(a.events.slice(3), new Map([[a.threadId, 8]]));
    t.is((await store.getThread(a.threadId))!.lastSeq, 8);
  });

  // read() takes a page as one JSON text; listEvents reads rows column by column: both must give back what was stored.
  test.serial(`${name}: every value reads back exactly, by page and by listing`, async (t) => {
    const { threadId, events } = thread(1);
    const payloads: JsonObject[] = [
      { text: 'quote " backslash \\ newline \n tab \t', unicode: "héllo ✓ 👋 \u2028", empty: "" },
      { n: [0, -1, 1.5, -2.25e-7, 1e21, 2 ** 53 - 1], flags: [true, false, null], nested: { deep: [{ a: [] }, {}] } },
      { "key with spaces": 1, "ключ": "значение", "": "empty key" },
    ];
    payloads.forEach((payload, i) => events.push(event(threadId, i + 2, { payload, metadata: { "k\"1": 'v"\\', unicode: "ü" }, level: "warn", schemaVersion: 7, turnId: ulid() })));
    await store.persistBatch(events);
    const read = await store.read(threadId, 0, 1_000);
    t.deepEqual(read, events);
    const listed = await store.listEvents({ threadId, types: [] }, 1_000, "");
    t.deepEqual(listed.items, events);
  });

  // Large batches go in by a plain INSERT first and fall back to ON CONFLICT DO NOTHING when rows are there.
  test.serial(`${name}: a large redelivered batch over rows already there adds only the missing ones`, async (t) => {
    const { threadId, events } = thread(450);
    const first = events.slice(0, 300);
    await store.persistBatch(first);
    await store.persistBatch(events);
    const read = await store.read(threadId, 0, 1_000);
    t.deepEqual(read.map((e) => e.seq), events.map((e) => e.seq));
    t.deepEqual(read.map((e) => e.eventId), events.map((e) => e.eventId));
    t.like(await store.getThread(threadId), { lastSeq: 450, metadata: { project: "x" } });
    // A redelivery whose rows carry other ids (never in practice) changes none of them.
    await store.persistBatch(events.map((e) => ({ ...e, eventId: ulid() })));
    t.deepEqual((await store.read(threadId, 0, 1_000)).map((e) => e.eventId), events.map((e) => e.eventId));
  });

  test.serial(`${name}: turns are projected and never move backwards`, async (t) => {
    const { threadId, events } = thread(1);
    const turnId = ulid();
    events.push(event(threadId, 2, { type: "turn.submitted", turnId, payload: { input: { text: "hi" }, metadata: {}, idempotency_key: "k" } }));
    await store.persistBatch(events);
    t.like(await store.getTurn(turnId), { turnId, status: "queued", submittedSeq: 2, input: { text: "hi" }, idempotencyKey: "k" });
    t.like(await store.getTurn(turnId, "acme"), { turnId, tenantId: "acme" });
    t.is(await store.getTurn(turnId, "globex"), undefined, "another tenant's turn is not found");
    t.is((await store.getThread(threadId))!.status, "busy");
    const started = event(threadId, 3, { type: "turn.started", turnId, payload: { attempt: 1, agent_id: "a1" } });
    const completed = event(threadId, 4, { type: "turn.completed", turnId, payload: { output: { answer: 42 } } });
    await store.persistBatch([started]);
    await store.persistBatch([completed]);
    await store.persistBatch([started]); // a redelivery after the turn ended must not reopen it
    t.like(await store.getTurn(turnId), { status: "completed", output: { answer: 42 }, attempt: 1, agentId: "a1" });
    t.truthy((await store.getTurn(turnId))!.endedAt);
    t.is((await store.getThread(threadId))!.status, "idle");
    const page = await store.listTurns(threadId, 10, "");
    t.deepEqual(page.items.map((x) => x.turnId), [turnId]);
  });

  test.serial(`${name}: find and locate events by id, within their tenant`, async (t) => {
    const { threadId, events } = thread(3);
    await store.persistBatch(events);
    t.deepEqual(await store.findEvent("acme", events[1].eventId), events[1]);
    t.is(await store.findEvent("acme", "missing"), undefined);
    t.is(await store.findEvent("globex", events[1].eventId), undefined, "another tenant's id is not found");
    const where = await store.locateEventIds("acme", [events[2].eventId, "missing"]);
    t.deepEqual([...where], [[events[2].eventId, { threadId, seq: 3 }]]);
    t.deepEqual([...(await store.locateEventIds("globex", [events[2].eventId]))], []);
  });

  test.serial(`${name}: two tenants keep events with the same id apart, persisted and archived`, async (t) => {
    const shared = [`shared-${ulid()}`, `shared-${ulid()}`];
    const acme = thread(3, "acme");
    const globex = thread(3, "globex");
    for (const { events } of [acme, globex]) shared.forEach((id, i) => (events[i + 1].eventId = id));
    await store.persistBatch(acme.events);
    await store.persistBatch(globex.events);
    t.deepEqual(await store.read(globex.threadId, 0, 10), globex.events, "globex's events are all there");
    for (const [tenant, { threadId, events }] of [["acme", acme], ["globex", globex]] as const) {
      t.deepEqual(await store.findEvent(tenant, shared[0]), events[1], tenant);
      const where = await store.locateEventIds(tenant, shared);
      t.deepEqual(shared.map((id) => where.get(id)), [{ threadId, seq: 2 }, { threadId, seq: 3 }], tenant);
      // Thread and turn lookups by (id, tenant): another tenant's is not found.
      const other = tenant === "acme" ? "globex" : "acme";
      t.like(await store.getThread(threadId, tenant), { threadId, tenantId: tenant });
      t.like(await store.getThread(threadId), { threadId, tenantId: tenant });
      t.is(await store.getThread(threadId, other), undefined, tenant);
    }
    // Archived ids keep their tenant: each still finds its own.
    for (const [tenant, { threadId }] of [["acme", acme], ["globex", globex]] as const) {
      const committed = await store.commitArchive({
        archiveId: ulid(), threadId, tenantId: tenant, fromSeq: 1, toSeq: 3, objectKey: `threads/${tenant}/${threadId}/test`,
        eventCount: 3, bytes: 1, sha256: "0".repeat(64), createdAt: Date.now(),
      });
      t.true(committed);
    }
    for (const [tenant, { threadId }] of [["acme", acme], ["globex", globex]] as const) {
      t.is(await store.findEvent(tenant, shared[0]), undefined, "archived rows left agent_events");
      const where = await store.locateEventIds(tenant, shared);
      t.is(where.size, 2);
      t.deepEqual(shared.map((id) => where.get(id)), [{ threadId, seq: 2 }, { threadId, seq: 3 }], tenant);
    }
    t.deepEqual([...(await store.locateEventIds("initech", shared))], []);
  });

  test.serial(`${name}: listEvents filters and pages`, async (t) => {
    const { threadId, events } = thread(1, "filters");
    const turnId = ulid();
    for (let s = 2; s <= 25; s++) {
      events.push(event(threadId, s, { tenantId: "filters", type: s % 2 ? "tool.call.started" : "message.delta", turnId: s > 20 ? turnId : "" }));
    }
    await store.persistBatch(events);
    const all: number[] = [];
    let token = "";
    do {
      const page = await store.listEvents({ threadId, types: [] }, 7, token);
      all.push(...page.items.map((e) => e.seq));
      token = page.nextPageToken;
    } while (token);
    t.deepEqual(all, Array.from({ length: 25 }, (_, i) => i + 1));
    const tools = await store.listEvents({ threadId, types: ["tool."] }, 100, "");
    t.true(tools.items.every((e) => e.type === "tool.call.started"));
    t.is(tools.items.length, 12);
    t.deepEqual((await store.listEvents({ turnId, types: [] }, 100, "")).items.map((e) => e.seq), [21, 22, 23, 24, 25]);
    t.deepEqual((await store.listEvents({ threadId, types: [], afterSeq: 23 }, 100, "")).items.map((e) => e.seq), [24, 25]);
    const byTime = await store.listEvents({ tenantId: "filters", types: [], createdAfter: 1_700_000_000_010, createdBefore: 1_700_000_000_013 }, 100, "");
    t.deepEqual(byTime.items.map((e) => e.seq), [10, 11, 12]);
    let crossTenant: number[] = [];
    token = "";
    do {
      const page = await store.listEvents({ tenantId: "filters", types: ["message."] }, 5, token);
      crossTenant = crossTenant.concat(page.items.map((e) => e.seq));
      token = page.nextPageToken;
    } while (token);
    t.is(crossTenant.length, 12);
  });

  test.serial(`${name}: listThreads is newest first, per tenant, paged`, async (t) => {
    const tenant = `tenant-${ulid()}`;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { threadId, events } = thread(1, tenant);
      events[0].createdAt = 1_700_000_100_000 + i;
      await store.persistBatch(events);
      ids.push(threadId);
    }
    const first = await store.listThreads(tenant, 3, "");
    const second = await store.listThreads(tenant, 3, first.nextPageToken);
    t.deepEqual([...first.items, ...second.items].map((x) => x.threadId), ids.reverse());
    t.is(second.nextPageToken, "");
    t.true((await store.listThreads(undefined, 1000, "")).items.length >= 5);
  });
}
