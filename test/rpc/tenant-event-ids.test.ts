// Client event ids belong to their tenant, through the real server on both
// tiers and while the events move hot → warm → cold: two tenants may use one
// id, a retry is recognised within its tenant only, GetEvent looks in the
// caller's tenant, and no error names another tenant's thread.
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { ulid } from "ulid";
import { apiKeysEnv, clientsWithKey, type KeyedClients } from "../support/keys.js";
import { serverPerTier, type TestServer, tierKinds, waitPersisted } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const keys = {
  acmeClient: { key: "acme-client-key-0001", tenant: "acme", role: "client" },
  acmeAgent: { key: "acme-agent-key-0001", tenant: "acme", role: "agent" },
  globexClient: { key: "globex-client-key-01", tenant: "globex", role: "client" },
  globexAgent: { key: "globex-agent-key-001", tenant: "globex", role: "agent" },
  admin: { key: "root-admin-key-00001", tenant: "*", role: "admin" },
};

// A small hot window: the events leave the hot tier soon after the persister commits them.
const servers = serverPerTier(test, { EVENTIDE_API_KEYS: apiKeysEnv(keys), EVENTIDE_HOT_WINDOW: "5", EVENTIDE_PERSIST_WAIT_MS: "5" });

const as = (server: TestServer, who: keyof typeof keys): KeyedClients => clientsWithKey(server.baseUrl, keys[who].key);

async function refusal(call: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await call();
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}

const anonymised = (m: string) => m.replaceAll(/[0-9A-HJKMNP-TV-Z]{26}/g, "<id>");

for (const tier of tierKinds) {
  test(`${tier}: two tenants append one client event_id and each gets its own event, in every tier; retries dedupe within the tenant`, async (t) => {
    const server = servers.get(tier)!;
    const admin = as(server, "admin");
    const tenants = {
      acme: { client: as(server, "acmeClient"), agent: as(server, "acmeAgent"), threads: [] as string[] },
      globex: { client: as(server, "globexClient"), agent: as(server, "globexAgent"), threads: [] as string[] },
    };
    for (const tn of Object.values(tenants)) {
      for (let i = 0; i < 2; i++) tn.threads.push((await tn.client.turns.createThread({})).thread!.threadId);
    }
    const shared = `shared-${ulid()}`;
    const acmeOnly = `acme-only-${ulid()}`;
    const batch = (who: string) => [{ eventId: shared, type: "custom", payload: { who } }];
    const originals = new Map<string, { seq: bigint; threadId: string }>();
    for (const [who, tn] of Object.entries(tenants)) {
      const res = await tn.agent.events.appendEvents({ threadId: tn.threads[0], events: batch(who) });
      t.false(res.duplicate, `${who}: another tenant's id is not a retry`);
      t.like(res.events[0], { eventId: shared, seq: 2n, threadId: tn.threads[0], tenantId: who });
      originals.set(who, { seq: res.firstSeq, threadId: tn.threads[0] });
    }
    await tenants.acme.agent.events.appendEvents({ threadId: tenants.acme.threads[0], events: [{ eventId: acmeOnly, type: "custom" }] });

    const check = async (stage: string) => {
      for (const [who, tn] of Object.entries(tenants)) {
        const other = who === "acme" ? tenants.globex : tenants.acme;
        const original = originals.get(who)!;
        // A retry returns the tenant's own original and appends nothing.
        const before = (await tn.client.turns.getThread({ threadId: tn.threads[0] })).thread!.lastSeq;
        const retry = await tn.agent.events.appendEvents({ threadId: tn.threads[0], events: batch(who) });
        t.true(retry.duplicate, `${stage}: ${who} retry`);
        t.is(retry.firstSeq, original.seq, `${stage}: ${who} retry`);
        t.is((await tn.client.turns.getThread({ threadId: tn.threads[0] })).thread!.lastSeq, before, `${stage}: ${who} retry wrote nothing`);
        // GetEvent looks in the caller's tenant.
        const got = (await tn.client.events.getEvent({ eventId: shared })).event!;
        t.like(got, { threadId: original.threadId, seq: original.seq, tenantId: who }, `${stage}: ${who} GetEvent`);
        t.deepEqual(got.payload, { who }, `${stage}: ${who} GetEvent`);
        t.like((await admin.events.getEvent({ eventId: shared, tenantId: who })).event, { threadId: original.threadId, tenantId: who });
        // The id on another of the tenant's threads: ALREADY_EXISTS may name the tenant's own thread, never the other tenant's.
        const conflict = await refusal(() => tn.agent.events.appendEvents({ threadId: tn.threads[1], events: batch(who) }));
        t.is(conflict.code, Code.AlreadyExists, `${stage}: ${who}: ${conflict.message}`);
        for (const threadId of other.threads) t.false(conflict.rawMessage.includes(threadId), `${stage}: ${who}: ${conflict.rawMessage}`);
        const partial = await refusal(() => tn.agent.events.appendEvents({ threadId: tn.threads[0], events: [...batch(who), { eventId: `new-${ulid()}`, type: "custom" }] }));
        t.is(partial.code, Code.AlreadyExists, `${stage}: ${who}: ${partial.message}`);
        for (const threadId of other.threads) t.false(partial.rawMessage.includes(threadId), `${stage}: ${who}: ${partial.rawMessage}`);
        t.is((await tn.client.turns.getThread({ threadId: tn.threads[1] })).thread!.lastSeq, 1n, `${stage}: ${who}: the conflicts wrote nothing`);
      }
      // Another tenant's id answers exactly as an unknown one, even when named.
      const globex = tenants.globex.client.events;
      const foreign = await refusal(() => globex.getEvent({ eventId: acmeOnly }));
      const unknown = await refusal(() => globex.getEvent({ eventId: `acme-only-${ulid()}` }));
      t.is(foreign.code, Code.NotFound, stage);
      t.is(anonymised(foreign.rawMessage), anonymised(unknown.rawMessage), stage);
      t.is((await refusal(() => globex.getEvent({ eventId: acmeOnly, tenantId: "acme" }))).code, Code.NotFound, stage);
      // A key of every tenant looks in the one it names, else in the default tenant.
      t.is((await refusal(() => admin.events.getEvent({ eventId: shared }))).code, Code.NotFound, stage);
    };

    await check("hot");

    // Past the hot window: persisted, then trimmed from the hot tier (the trim follows the commit).
    for (const [who, tn] of Object.entries(tenants)) {
      const more = await tn.agent.events.appendEvents({ threadId: tn.threads[0], events: Array.from({ length: 10 }, () => ({ type: "custom" })) });
      await waitPersisted(server, tn.threads[0], Number(more.lastSeq));
      for (let i = 0; i < 1_000 && (await server.tiers.hot.findEvent(who, shared)); i++) await delay(20);
      t.is(await server.tiers.hot.findEvent(who, shared), undefined, `${who}: trimmed from the hot tier`);
    }
    await check("warm");

    // Archived: the ids are found through archived_event_ids, per tenant.
    for (const tn of Object.values(tenants)) {
      const { archives } = await admin.archives.archiveThread({ threadId: tn.threads[0] });
      t.is(archives[0]?.fromSeq, 1n);
    }
    await check("cold");
  });
}
