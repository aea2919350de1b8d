// Per-key limits through the real server, on both tiers: a key over its
// request rate or its open-stream cap gets RESOURCE_EXHAUSTED, other keys are
// unaffected, and a closed stream gives its slot back.
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { apiKeysEnv, clientsWithKey, refusal } from "../support/keys.js";
import { serverPerTier, tierKinds } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const keys = {
  busy: { key: "busy-client-key-0001", tenant: "acme", role: "client" },
  calm: { key: "calm-client-key-0001", tenant: "acme", role: "client" },
  tailer: { key: "tailer-client-key-01", tenant: "acme", role: "client" },
};
const rate = 5;
const servers = serverPerTier(test, {
  EVENTIDE_API_KEYS: apiKeysEnv(keys),
  EVENTIDE_KEY_RATE: String(rate),
  EVENTIDE_KEY_BURST: "1",
  EVENTIDE_KEY_MAX_STREAMS: "2",
  EVENTIDE_HEARTBEAT_MS: "50",
});

for (const tier of tierKinds) {
  test(`${tier}: a key over its request rate is RESOURCE_EXHAUSTED; another key is not`, async (t) => {
    const server = servers.get(tier)!;
    const busy = clientsWithKey(server.baseUrl, keys.busy.key);
    const outcomes = await Promise.all(
      Array.from({ length: rate + 5 }, () =>
        busy.turns.listThreads({}).then(
          () => "ok",
          (err) => ConnectError.from(err),
        ),
      ),
    );
    const refused = outcomes.filter((o): o is ConnectError => o !== "ok");
    // The rate plus the one-request burst pass; the rest of the same second is refused.
    t.is(outcomes.length - refused.length, rate + 1);
    for (const err of refused) {
      t.is(err.code, Code.ResourceExhausted);
      t.regex(err.rawMessage, /request rate limit of 5\/s .* retry in \d+ ms/);
    }
    await t.notThrowsAsync(clientsWithKey(server.baseUrl, keys.calm.key).turns.listThreads({}));
  });

  test(`${tier}: a key's open streams are capped; ending one frees its slot`, async (t) => {
    const server = servers.get(tier)!;
    const tailer = clientsWithKey(server.baseUrl, keys.tailer.key);
    const { thread } = await tailer.turns.createThread({});
    const threadId = thread!.threadId;
    const controllers = [new AbortController(), new AbortController()];
    const open = controllers.map((c) => tailer.events.tailEvents({ threadId, afterSeq: thread!.lastSeq, follow: true }, { signal: c.signal })[Symbol.asyncIterator]());
    // Both streams are live once their first message (the caught-up marker) arrives.
    for (const stream of open) t.is((await stream.next()).value?.item.case, "caughtUp");
    const third = await refusal(async () => {
      for await (const _ of tailer.events.tailEvents({ threadId, afterSeq: thread!.lastSeq, follow: true })) break;
    });
    t.is(third.code, Code.ResourceExhausted);
    t.regex(third.rawMessage, /already has 2 open streams .* limit is 2/);

    controllers[0].abort();
    await open[0].next().catch(() => undefined);
    // The server sees the cancel a moment later.
    const deadline = Date.now() + 5_000;
    for (;;) {
      const c = new AbortController();
      try {
        const stream = tailer.events.tailEvents({ threadId, afterSeq: thread!.lastSeq, follow: true }, { signal: c.signal })[Symbol.asyncIterator]();
        t.is((await stream.next()).value?.item.case, "caughtUp");
        c.abort();
        break;
      } catch (err) {
        c.abort();
        if (ConnectError.from(err).code !== Code.ResourceExhausted || Date.now() > deadline) throw err;
        await delay(50);
      }
    }
    controllers[1].abort();
  });
}
