// Postgres goes away (its connections cut, new ones refused) while events keep
// coming: appends keep working on the hot tier, the persister retries with
// backoff, and once Postgres is back it catches up with nothing lost.
import test from "ava";
import { newEvent } from "../support/events.js";
import { kill, spawnRole } from "../support/child.js";
import { databaseUrl } from "../support/postgres.js";
import { TcpProxy } from "../support/tcp-proxy.js";
import { openRealTiers } from "../support/tiers.js";
import { setTimeout as delay } from "node:timers/promises";

test("the persister survives a Postgres outage and catches up", async (t) => {
  const real = await openRealTiers();
  t.teardown(() => real.cleanup());
  const target = new URL(databaseUrl);
  const proxy = new TcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
  await proxy.start();
  t.teardown(() => proxy.stop());
  const viaProxy = new URL(databaseUrl);
  viaProxy.port = String(proxy.port);
  const persister = spawnRole("persister", { ...real.env, DATABASE_URL: viaProxy.toString() });
  t.teardown(() => kill(persister));

  const { hot } = real.tiers;
  const threadId = hot.newThreadId();
  await hot.append({ tenantId: "acme", threadId, create: { metadata: {} }, events: [newEvent("thread.created")] });
  const appendFor = async (ms: number) => {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      await hot.append({ tenantId: "acme", threadId, events: [newEvent(), newEvent()] });
      await delay(5);
    }
  };
  const persisted = async () =>
    (await real.db.oneOrNone<{ last_seq: number }>("SELECT last_seq FROM threads WHERE thread_id = $1", [threadId]))?.last_seq ?? 0;

  await appendFor(500);
  // Let the child start and persist through the proxy before Postgres "goes away".
  for (const deadline = Date.now() + 20_000; (await persisted()) === 0 && Date.now() < deadline; ) await appendFor(200);
  t.true((await persisted()) > 0, "the persister got going");
  await proxy.cut();
  const atOutage = await persisted();
  await appendFor(3_000); // the persister fails and backs off meanwhile
  const duringOutage = (await hot.getThread(threadId))!.lastSeq;
  t.true(duringOutage > atOutage + 100, "appends went on while Postgres was away");
  await proxy.restore();
  await appendFor(500);

  const lastSeq = (await hot.getThread(threadId))!.lastSeq;
  const deadline = Date.now() + 40_000;
  while ((await persisted()) < lastSeq) {
    if (Date.now() > deadline) return t.fail(`stuck at ${await persisted()} of ${lastSeq}`);
    await delay(200);
  }
  const { n, distinct } = await real.db.one<{ n: number; distinct: number }>(
    "SELECT count(*)::int AS n, count(DISTINCT seq)::int AS distinct FROM agent_events WHERE thread_id = $1",
    [threadId],
  );
  t.deepEqual({ n, distinct }, { n: lastSeq, distinct: lastSeq });
});
