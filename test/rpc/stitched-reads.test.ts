// Reads while events move between tiers: a tiny hot window and a busy
// persister mean every tail and listing crosses the warm/hot seam.
import test from "ava";
import { Code, ConnectError } from "@connectrpc/connect";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { collectTail, waitPersisted, tierKinds, serverPerTier } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const servers = serverPerTier(test, { EVENTIDE_HOT_WINDOW: "5", EVENTIDE_PERSIST_WAIT_MS: "5", EVENTIDE_HEARTBEAT_MS: "200" });

for (const tier of tierKinds) {
  test(`${tier}: tails started while events move between tiers see every seq once`, async (t) => {
    const server = servers.get(tier)!;
    const { thread } = await server.turns().createThread({});
    const threadId = thread!.threadId;
    let appending = true;
    let finished = false;
    let last = 1;
    const appender = (async () => {
      for (let i = 0; appending; i++) {
        const res = await server.events().appendEvents({ threadId, events: Array.from({ length: 1 + (i % 4) }, () => ({ type: "message.delta" })) });
        last = Number(res.lastSeq);
        await delay(2);
      }
    })();
    const tails = [];
    for (let n = 0; n < 6; n++) {
      await delay(150);
      tails.push(
        collectTail(
          (signal) => server.events().tailEvents({ threadId, follow: true, afterSeq: BigInt(n % 2 ? 0 : Math.floor(last / 2)) }, { signal }),
          (items) => finished && items.some((i) => i.item.case === "event" && Number(i.item.value.seq) === last),
          30_000,
        ).then((items) => ({ from: n % 2 ? 0 : -1, items })),
      );
    }
    await delay(500);
    appending = false;
    await appender;
    finished = true;
    for (const { items } of await Promise.all(tails)) {
      const seqs = items.flatMap((i) => (i.item.case === "event" ? [Number(i.item.value.seq)] : []));
      t.is(seqs.at(-1), last);
      t.true(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1), "contiguous, no duplicate");
    }
    await waitPersisted(server, threadId, last);
    for (let i = 0; i < 1_000 && (await server.tiers.hot.read(threadId, 0, 100_000)).length >= last; i++) await delay(20);
    t.true((await server.tiers.hot.read(threadId, 0, 100_000)).length < last, "the hot window was trimmed");
    const all = await collectTail((signal) => server.events().tailEvents({ threadId }, { signal }), () => false);
    t.is(all.filter((i) => i.item.case === "event").length, last);
  });

  test(`${tier}: ListEvents, GetEvent, ListTurns, ListThreads read across tiers`, async (t) => {
    const server = servers.get(tier)!;
    const first = await server.turns().submitTurn({ input: { n: 1 } });
    const threadId = first.thread!.threadId;
    const appended = await server.events().appendEvents({
      threadId,
      turnId: first.turn!.turnId,
      events: Array.from({ length: 30 }, (_, i) => ({ type: i % 3 ? "message.delta" : "tool.call.started" })),
    });
    const second = await server.turns().submitTurn({ threadId, input: { n: 2 } });
    await waitPersisted(server, threadId, Number(second.seq));

    const seqs: number[] = [];
    let pageToken = "";
    do {
      const page = await server.events().listEvents({ threadId, pageSize: 7, pageToken });
      seqs.push(...page.events.map((e) => Number(e.seq)));
      pageToken = page.nextPageToken;
    } while (pageToken);
    t.deepEqual(seqs, Array.from({ length: 33 }, (_, i) => i + 1));
    const tools = await server.events().listEvents({ threadId, types: ["tool."] });
    t.is(tools.events.length, 10);
    const byTurn = await server.events().listEvents({ turnId: first.turn!.turnId, pageSize: 1000 });
    t.is(byTurn.events.length, 31, "turn.submitted and the 30 events of the turn");
    const old = await server.events().getEvent({ eventId: appended.events[0].eventId });
    t.is(old.event!.seq, 3n, "found in the warm tier after the hot window moved on");

    const turns = await server.turns().listTurns({ threadId });
    t.deepEqual(turns.turns.map((x) => x.turnId), [first.turn!.turnId, second.turn!.turnId]);
    t.true(turns.turns.every((x) => x.status === TurnStatus.QUEUED));
    const threads = await server.turns().listThreads({ pageSize: 1000 });
    t.true(threads.threads.some((x) => x.threadId === threadId));
    const bad = await t.throwsAsync(server.events().listEvents({ threadId, pageToken: "garbage" }));
    t.is(ConnectError.from(bad).code, Code.InvalidArgument);
    const tooBig = await t.throwsAsync(server.turns().listThreads({ pageSize: 1001 }));
    t.is(ConnectError.from(tooBig).code, Code.InvalidArgument);
  });

  test(`${tier}: a retry of a batch that left the hot window still returns the original seqs`, async (t) => {
    const server = servers.get(tier)!;
    const { thread } = await server.turns().createThread({});
    const threadId = thread!.threadId;
    const batch = { threadId, events: [{ eventId: `old-${tier}-1`, type: "custom" }, { eventId: `old-${tier}-2`, type: "custom" }] };
    const first = await server.events().appendEvents(batch);
    const more = await server.events().appendEvents({ threadId, events: Array.from({ length: 20 }, () => ({ type: "custom" })) });
    await waitPersisted(server, threadId, Number(more.lastSeq));
    // The trim follows the commit: wait for it.
    for (let i = 0; i < 1_000 && (await server.tiers.hot.findEvent("default", `old-${tier}-1`)); i++) await delay(20);
    t.is(await server.tiers.hot.findEvent("default", `old-${tier}-1`), undefined, "trimmed from the hot tier");
    const retry = await server.events().appendEvents(batch);
    t.deepEqual([retry.firstSeq, retry.lastSeq], [first.firstSeq, first.lastSeq]);
    t.is((await server.turns().getThread({ threadId })).thread!.lastSeq, more.lastSeq);
  });
}
