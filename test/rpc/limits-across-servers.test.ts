// On the Redis tier a key's limits are counted in Redis: two servers on the
// same tiers give a key its request rate and its open-stream cap once, not
// once each. Stream slots of a server that stops refreshing them (it crashed)
// expire; a Redis that does not answer leaves the limits counted per server.
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import type { Caller } from "../../server/auth.js";
import { RedisCallerLimits } from "../../server/limits/redis-caller-limits.js";
import type { PostgresWarmStore } from "../../server/tiers/warm/postgres/postgres-warm-store.js";
import { apiKeysEnv, clientsWithKey, refusal } from "../support/keys.js";
import { connectRedis, deletePrefix } from "../support/redis.js";
import { startTestServer, type TestServer } from "../support/server.js";

const rate = 5;
/** One key a round of the rate test: a round that straddles two rate windows is retried with a fresh key. */
const rateRounds = 12;
const keys: Record<string, { key: string; tenant: string; role: string }> = {
  tailer: { key: "tailer-client-key-01", tenant: "acme", role: "client" },
};
for (let i = 0; i < rateRounds; i++) keys[`busy${i}`] = { key: `busy-client-key-${String(i).padStart(4, "0")}`, tenant: "acme", role: "client" };

const id = randomUUID().slice(0, 8);
const shared = { EVENTIDE_REDIS_PREFIX: `ettest-${id}`, EVENTIDE_PG_SCHEMA: `ettest_${id}` };
const servers: TestServer[] = [];

test.before(async () => {
  const env = {
    ...shared,
    EVENTIDE_API_KEYS: apiKeysEnv(keys),
    EVENTIDE_KEY_RATE: String(rate),
    EVENTIDE_KEY_BURST: "1",
    EVENTIDE_KEY_MAX_STREAMS: "2",
    EVENTIDE_HEARTBEAT_MS: "50",
  };
  // One after the other: the second finds the schema migrated.
  servers.push(await startTestServer("redis", env));
  servers.push(await startTestServer("redis", { ...env, EVENTIDE_ROLES: "server" }));
});

test.after.always(async () => {
  // Each server drops only the schema and prefix it made up itself: these shared ones go here.
  await (servers[0]?.tiers.warm as PostgresWarmStore | undefined)?.db.none("DROP SCHEMA IF EXISTS $1:name CASCADE", [shared.EVENTIDE_PG_SCHEMA]);
  for (const s of servers.reverse()) await s.close();
  await deletePrefix(shared.EVENTIDE_REDIS_PREFIX);
});

test.serial("a key's request rate holds across two servers", async (t) => {
  for (let round = 0; round < rateRounds; round++) {
    const [a, b] = servers.map((s) => clientsWithKey(s.baseUrl, keys[`busy${round}`].key));
    const started = Date.now();
    // Twice what one server would let through, half to each server.
    const outcomes = await Promise.all(
      Array.from({ length: 2 * (rate + 1) + 2 }, (_, i) =>
        (i % 2 ? b : a).turns.listThreads({}).then(
          () => "ok",
          (err) => ConnectError.from(err),
        ),
      ),
    );
    // Counted only if every call was counted inside one 1-second window.
    if (Date.now() - started > 800) continue;
    const refused = outcomes.filter((o): o is ConnectError => o !== "ok");
    t.is(outcomes.length - refused.length, rate + 1, "the rate plus the one-request burst, across both servers");
    for (const err of refused) {
      t.is(err.code, Code.ResourceExhausted);
      t.regex(err.rawMessage, /request rate limit of 5\/s .* retry in \d+ ms/);
    }
    return;
  }
  t.fail(`no round of calls fitted in one second in ${rateRounds} tries`);
});

test.serial("a key's open streams are capped across two servers; ending one frees a slot on the other", async (t) => {
  const [a, b] = servers.map((s) => clientsWithKey(s.baseUrl, keys.tailer.key));
  const { thread } = await a.turns.createThread({});
  const threadId = thread!.threadId;
  const tail = (client: typeof a, signal: AbortSignal) =>
    client.events.tailEvents({ threadId, afterSeq: thread!.lastSeq, follow: true }, { signal })[Symbol.asyncIterator]();
  const controllers = [new AbortController(), new AbortController()];
  t.teardown(() => controllers.forEach((c) => c.abort()));
  const open = [tail(a, controllers[0].signal), tail(b, controllers[1].signal)];
  for (const stream of open) t.is((await stream.next()).value?.item.case, "caughtUp");

  for (const client of [a, b]) {
    const third = await refusal(async () => {
      for await (const _ of client.events.tailEvents({ threadId, afterSeq: thread!.lastSeq, follow: true })) break;
    });
    t.is(third.code, Code.ResourceExhausted);
    t.regex(third.rawMessage, /already has 2 open streams .* limit is 2/);
  }

  // The stream on server A ends; server B sees the slot free (A releases it a moment after the cancel).
  controllers[0].abort();
  await open[0].next().catch(() => undefined);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const c = new AbortController();
    try {
      t.is((await tail(b, c.signal).next()).value?.item.case, "caughtUp");
      c.abort();
      break;
    } catch (err) {
      c.abort();
      if (ConnectError.from(err).code !== Code.ResourceExhausted || Date.now() > deadline) throw err;
      await delay(50);
    }
  }
});

const caller: Caller = { tenantId: "acme", role: "client", keyName: "acme/client#crash" };
const settings = { requestsPerSecond: 0, burst: 0, maxStreamsPerKey: 2, maxAnonymousStreams: 10 };

test.serial("a crashed server's stream slots expire; a live server's are kept by its refreshes", async (t) => {
  const client = await connectRedis();
  const prefix = `ettest-${randomUUID().slice(0, 8)}`;
  t.teardown(async () => {
    await deletePrefix(prefix);
    client.destroy();
  });
  const log = pino({ level: "silent" });
  const slotTtlMs = 1_500;
  const live = new RedisCallerLimits({ client, prefix, settings, log, slotTtlMs });
  const crashed = new RedisCallerLimits({ client, prefix, settings, log, slotTtlMs });
  const other = new RedisCallerLimits({ client, prefix, settings, log, slotTtlMs });
  t.teardown(() => [live, crashed, other].forEach((l) => l.close()));

  await live.openStream(caller);
  await crashed.openStream(caller);
  crashed.close(); // stops refreshing, as a SIGKILLed server would
  await t.throwsAsync(other.openStream(caller), { message: /already has 2 open streams/ });
  // Once the crashed server's slot expired, its place is free; the live server's slot (refreshed every 500 ms) is not.
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await other.openStream(caller);
      break;
    } catch (err) {
      if (!/already has 2/.test(String(err)) || Date.now() > deadline) throw err;
      await delay(100);
    }
  }
  await delay(2 * slotTtlMs);
  await t.throwsAsync(other.openStream(caller), { message: /already has 2 open streams/ }, "the live server's slot outlived its first expiry");
});

test.serial("with Redis not answering, limits are counted per server instead of refusing calls", async (t) => {
  const client = await connectRedis();
  const prefix = `ettest-${randomUUID().slice(0, 8)}`;
  const limits = new RedisCallerLimits({ client, prefix, settings: { ...settings, requestsPerSecond: 2, burst: 1 }, log: pino({ level: "silent" }) });
  t.teardown(() => limits.close());
  client.destroy(); // every Redis call now fails at once
  const outcomes = await Promise.all(Array.from({ length: 5 }, () => limits.spendRequest(caller).then(() => "ok", (err: ConnectError) => err.code)));
  t.deepEqual(outcomes.sort(), ["ok", "ok", "ok", Code.ResourceExhausted, Code.ResourceExhausted].sort());
  const releases = [await limits.openStream(caller), await limits.openStream(caller)];
  await t.throwsAsync(limits.openStream(caller), { message: /already has 2 open streams/ });
  releases[0]();
  await t.notThrowsAsync(limits.openStream(caller));
});
