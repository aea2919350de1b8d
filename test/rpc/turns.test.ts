// TurnService through a real server, on every tier and protocol.
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { AgentService } from "../../gen/eventide/v1/agent_service_pb.js";
import { ThreadStatus, TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { collectTail, protocols, tierKinds, serverPerTier } from "../support/server.js";

const servers = serverPerTier(test);

for (const tier of tierKinds) {
  for (const protocol of protocols) {
    const name = `${tier}/${protocol}`;

    test(`${name}: CreateThread then GetThread`, async (t) => {
      const turns = servers.get(tier)!.turns(protocol);
      const { thread } = await turns.createThread({ metadata: { project: "demo" } });
      t.regex(thread!.threadId, /^[0-9A-Z]{26}$/);
      t.is(thread!.lastSeq, 1n);
      t.is(thread!.status, ThreadStatus.IDLE);
      const got = await turns.getThread({ threadId: thread!.threadId });
      t.deepEqual(got.thread!.metadata, { project: "demo" });
      t.is(got.thread!.tenantId, "default");
    });

    test(`${name}: SubmitTurn without a thread creates one, then turn.submitted`, async (t) => {
      const server = servers.get(tier)!;
      const res = await server.turns(protocol).submitTurn({ input: { text: "hello" }, metadata: { ui: "test" } });
      t.is(res.seq, 2n);
      t.is(res.turn!.status, TurnStatus.QUEUED);
      t.is(res.thread!.status, ThreadStatus.BUSY);
      t.deepEqual(res.turn!.input, { text: "hello" });
      const items = await collectTail(
        (signal) => server.events(protocol).tailEvents({ threadId: res.thread!.threadId }, { signal }),
        () => false,
      );
      const events = items.flatMap((i) => (i.item.case === "event" ? [i.item.value] : []));
      t.deepEqual(events.map((e) => [e.seq, e.type]), [[1n, "thread.created"], [2n, "turn.submitted"]]);
      t.is(events[1].turnId, res.turn!.turnId);
      t.deepEqual(events[1].payload, { input: { text: "hello" }, metadata: { ui: "test" } });
      t.like(items.at(-1)!.item, { case: "caughtUp" });
      const got = await server.turns(protocol).getTurn({ turnId: res.turn!.turnId });
      t.is(got.turn!.submittedSeq, 2n);
    });

    test(`${name}: the same idempotency_key returns the same turn and appends nothing`, async (t) => {
      const turns = servers.get(tier)!.turns(protocol);
      const { thread } = await turns.createThread({});
      const key = `key-${protocol}`;
      const first = await turns.submitTurn({ threadId: thread!.threadId, input: { n: 1 }, idempotencyKey: key });
      const again = await turns.submitTurn({ threadId: thread!.threadId, input: { n: 1 }, idempotencyKey: key });
      t.is(again.turn!.turnId, first.turn!.turnId);
      t.is(again.seq, first.seq);
      t.is((await turns.getThread({ threadId: thread!.threadId })).thread!.lastSeq, 2n);
      // Without a thread, the key is the tenant's: the retry finds the thread it created.
      const fresh = await turns.submitTurn({ input: {}, idempotencyKey: `${key}-new` });
      const freshAgain = await turns.submitTurn({ input: {}, idempotencyKey: `${key}-new` });
      t.is(freshAgain.thread!.threadId, fresh.thread!.threadId);
      t.is(freshAgain.turn!.turnId, fresh.turn!.turnId);
    });

    test(`${name}: unknown ids are NOT_FOUND; a lease that was never given out is FAILED_PRECONDITION`, async (t) => {
      const server = servers.get(tier)!;
      const missing = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
      for (const call of [
        () => server.turns(protocol).getThread({ threadId: missing }),
        () => server.turns(protocol).getTurn({ turnId: missing }),
        () => server.turns(protocol).submitTurn({ threadId: missing, input: {} }),
        () => server.turns(protocol).cancelTurn({ turnId: missing }),
      ]) {
        const err = await t.throwsAsync(call());
        t.is(ConnectError.from(err).code, Code.NotFound);
      }
      const agents = createClient(AgentService, server.transport(protocol));
      const err = await t.throwsAsync(agents.renewLease({ leaseId: "x" }));
      t.is(ConnectError.from(err).code, Code.FailedPrecondition);
      const err2 = await t.throwsAsync(agents.completeTurn({ turnId: missing, leaseId: `${missing}.${missing}` }));
      t.is(ConnectError.from(err2).code, Code.FailedPrecondition);
    });
  }
}
