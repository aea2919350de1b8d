// Migrations on a database in use: each is applied over rows that the
// releases before it wrote, on real Postgres and on embedded PGlite.
import test from "ava";
import { ulid } from "ulid";
import type { StoredEvent } from "../../server/domain/records.js";
import { migrate } from "../../server/tiers/warm/postgres/migrate.js";
import { testWarm, warmKinds } from "../support/postgres.js";

function event(threadId: string, seq: number, tenantId: string, eventId = ulid()): StoredEvent {
  const type = seq === 1 ? "thread.created" : "custom";
  return { eventId, threadId, turnId: "", seq, type, payload: {}, metadata: {}, schemaVersion: 1, createdAt: 1_700_000_000_000 + seq, tenantId, level: "info" };
}

for (const kind of warmKinds) {
  test(`${kind}: 002 makes event ids unique per tenant on a database that has rows`, async (t) => {
    const warm = await testWarm(kind, "001_init");
    try {
      const { store, schema } = warm;
      const acme = ulid();
      const acmeEvents = [1, 2, 3, 4].map((seq) => event(acme, seq, "acme"));
      await store.persistBatch(acmeEvents);
      // What 001's archiver left: seqs 1-2 in an archive, their ids in archived_event_ids (no tenant column yet).
      await store.db.none(
        `INSERT INTO event_archives (archive_id, thread_id, tenant_id, from_seq, to_seq, object_key, event_count, bytes, sha256)
         VALUES ($1, $2, 'acme', 1, 2, 'k', 2, 1, 'x')`,
        [ulid(), acme],
      );
      await store.db.none("INSERT INTO archived_event_ids (event_id, thread_id, seq) SELECT event_id, thread_id, seq FROM agent_events WHERE seq <= 2");
      await store.db.none("DELETE FROM agent_events WHERE seq <= 2");
      // An id whose thread row is gone (never left by eventide itself): it points nowhere.
      await store.db.none("INSERT INTO archived_event_ids (event_id, thread_id, seq) VALUES ('orphan', $1, 1)", [ulid()]);

      t.deepEqual(await migrate(store.db, schema), ["002_event_ids_per_tenant"]);

      const archived = await store.db.any("SELECT tenant_id, event_id FROM archived_event_ids ORDER BY seq");
      t.deepEqual(archived, [{ tenant_id: "acme", event_id: acmeEvents[0].eventId }, { tenant_id: "acme", event_id: acmeEvents[1].eventId }]);
      const where = await store.locateEventIds("acme", acmeEvents.map((e) => e.eventId));
      t.deepEqual(acmeEvents.map((e) => where.get(e.eventId)), [1, 2, 3, 4].map((seq) => ({ threadId: acme, seq })));
      t.deepEqual(await store.findEvent("acme", acmeEvents[2].eventId), acmeEvents[2]);

      // Another tenant may now use acme's ids, persisted and archived ones alike; acme's stay acme's.
      const globex = ulid();
      const globexEvents = [event(globex, 1, "globex"), event(globex, 2, "globex", acmeEvents[1].eventId), event(globex, 3, "globex", acmeEvents[2].eventId)];
      await store.persistBatch(globexEvents);
      t.deepEqual(await store.read(globex, 0, 10), globexEvents);
      t.deepEqual(await store.findEvent("globex", acmeEvents[2].eventId), globexEvents[2]);
      t.deepEqual(await store.findEvent("acme", acmeEvents[2].eventId), acmeEvents[2]);
      t.deepEqual((await store.locateEventIds("globex", [acmeEvents[1].eventId])).get(acmeEvents[1].eventId), { threadId: globex, seq: 2 });
      t.deepEqual((await store.locateEventIds("acme", [acmeEvents[1].eventId])).get(acmeEvents[1].eventId), { threadId: acme, seq: 2 });
      t.deepEqual(await migrate(store.db, schema), [], "nothing left to apply");
    } finally {
      await warm.cleanup();
    }
  });
}
