// Several appenders, several tailers that disconnect and resume at random
// points, over every protocol: each tailer must see 1..N exactly once, in order.
// A tiny live buffer forces the overflow → catch-up-from-storage path too.
import test from "ava";
import { protocols, startTestServer, tierKinds } from "../support/server.js";
import { setTimeout as delay } from "node:timers/promises";

const appenders = 4;
const batchesPerAppender = 60;
const tailers = 8;

for (const tier of tierKinds) {
  test(`${tier}: resumed tails see every seq once, in order, while appends race`, async (t) => {
    const server = await startTestServer(tier, { EVENTIDE_TAIL_BUFFER: "8", EVENTIDE_HEARTBEAT_MS: "200" });
    t.teardown(() => server.close());
    const { thread } = await server.turns().createThread({});
    const threadId = thread!.threadId;
    let appendedThrough = 0;
    let appendsDone = false;

    const appending = (async () => {
      await Promise.all(
        Array.from({ length: appenders }, async (_, a) => {
          for (let b = 0; b < batchesPerAppender; b++) {
            const size = 1 + ((a * 7 + b * 13) % 20);
            const res = await server.events().appendEvents({
              threadId,
              events: Array.from({ length: size }, (_, i) => ({ type: "message.delta", payload: { a, b, i } })),
            });
            appendedThrough = Math.max(appendedThrough, Number(res.lastSeq));
            if (b % 10 === 0) await delay(1);
          }
        }),
      );
      appendsDone = true;
    })();

    const tailing = Array.from({ length: tailers }, async (_, n) => {
      const protocol = protocols[n % protocols.length];
      const seen: number[] = [];
      let resumes = 0;
      let rng = 17 + n;
      const random = (max: number) => (rng = (rng * 1103515245 + 12345) % 2 ** 31) % max;
      const deadline = Date.now() + 45_000;
      while (!(appendsDone && seen.length === appendedThrough) && Date.now() < deadline) {
        const controller = new AbortController();
        const disconnectAfter = 1 + random(150);
        let got = 0;
        try {
          const stream = server.events(protocol).tailEvents(
            { threadId, afterSeq: BigInt(seen.at(-1) ?? 0), follow: true },
            { signal: controller.signal },
          );
          for await (const res of stream) {
            if (res.item.case === "event") seen.push(Number(res.item.value.seq));
            if (++got >= disconnectAfter || (appendsDone && seen.length === appendedThrough)) break;
          }
        } catch (err) {
          if (!controller.signal.aborted) throw err;
        } finally {
          controller.abort();
        }
        resumes++;
      }
      return { protocol, seen, resumes };
    });

    await appending;
    const results = await Promise.all(tailing);
    const total = appendedThrough;
    t.true(total > appenders * batchesPerAppender, `appended ${total} events`);
    t.is(Number((await server.turns().getThread({ threadId })).thread!.lastSeq), total);
    for (const { protocol, seen, resumes } of results) {
      t.true(resumes > 1, `${protocol} tailer resumed`);
      t.is(seen.length, total, `${protocol} tailer saw every event`);
      t.true(seen.every((s, i) => s === i + 1), `${protocol} tailer saw 1..N in order with no duplicate`);
    }
  });
}
