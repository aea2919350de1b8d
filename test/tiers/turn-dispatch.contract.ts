// Turn dispatch's contract: one suite, run against every implementation.
import type { TestFn } from "ava";
import { ulid } from "ulid";
import { LeaseLost, NotFound, ThreadBusy, TurnCancelled, TurnNotStarted } from "../../server/domain/errors.js";
import type { TurnRecord } from "../../server/domain/records.js";
import { sleep } from "../../server/domain/wait.js";
import type { HotLog } from "../../server/tiers/hot/hot-log.js";
import type { Assignment, DispatchNotice, DispatchPolicy, TurnDispatch } from "../../server/tiers/hot/turn-dispatch.js";
import { newEvent } from "../support/events.js";

export const contractPolicy: DispatchPolicy = { leaseTtlMs: 1_500, maxAttempts: 2, backoffBaseMs: 200, backoffMaxMs: 400 };

export interface DispatchTier {
  hot: HotLog;
  dispatch: TurnDispatch;
  close(): Promise<void>;
}

export function turnDispatchContract(test: TestFn, name: string, open: (policy: DispatchPolicy) => Promise<DispatchTier>) {
  let tier: DispatchTier;
  const notices: DispatchNotice[] = [];
  test.before(async () => {
    tier = await open(contractPolicy);
    tier.dispatch.subscribe((n) => notices.push(n));
  });
  test.after.always(async () => {
    await tier?.close();
  });

  async function newThread(tenantId = "acme") {
    const threadId = tier.hot.newThreadId();
    await tier.hot.append({ tenantId, threadId, create: { metadata: {} }, events: [newEvent("thread.created")] });
    return threadId;
  }

  async function submit(threadId: string, opts: { tenantId?: string; rejectIfBusy?: boolean } = {}) {
    const tenantId = opts.tenantId ?? "acme";
    const turnId = ulid();
    const turn: Omit<TurnRecord, "submittedSeq"> = {
      turnId, threadId, tenantId, status: "queued", input: { text: "hi" }, error: "", attempt: 0, agentId: "",
      idempotencyKey: "", metadata: {}, createdAt: 0, updatedAt: 0,
    };
    await tier.hot.append({
      tenantId,
      threadId,
      submit: { turn, idempotencyKey: "", rejectIfBusy: opts.rejectIfBusy },
      events: [newEvent("turn.submitted", { turnId })],
    });
    return turnId;
  }

  async function claimed(threadId: string, agentId = "agent-a"): Promise<Assignment> {
    const res = await tier.dispatch.claim(threadId, agentId);
    if (res.kind !== "assigned") throw new Error(`expected an assignment, got ${res.kind}`);
    return res.assignment;
  }

  const types = async (threadId: string) => (await tier.hot.read(threadId, 0, 1000)).map((e) => e.type);

  test(`${name}: a submit that makes its thread ready tells this process's listeners by the time it returns, once`, async (t) => {
    const threadId = await newThread();
    const readyNotices = () => notices.filter((n) => n.kind === "ready" && n.threadId === threadId).length;
    await submit(threadId);
    t.is(readyNotices(), 1, "told as the submit returned");
    await sleep(300, new AbortController().signal); // the pub/sub echo has come by then
    t.is(readyNotices(), 1, "and not told again by the echo");
    // A second turn while none runs: told again, once again.
    await submit(threadId);
    t.is(readyNotices(), 2);
    await sleep(300, new AbortController().signal);
    t.is(readyNotices(), 2);
  });

  test(`${name}: an agent of one tenant cannot claim another tenant's turn, and the try changes nothing`, async (t) => {
    const threadId = await newThread("globex");
    const turnId = await submit(threadId, { tenantId: "globex" });
    const before = await types(threadId);
    t.deepEqual(await tier.dispatch.claim(threadId, "agent-a", "acme"), { kind: "other-tenant", tenantId: "globex" });
    t.deepEqual(await types(threadId), before);
    t.true((await tier.dispatch.readyThreads(1000)).includes(threadId), "the thread still waits for an agent of its tenant");
    const res = await tier.dispatch.claim(threadId, "agent-b", "globex");
    t.is(res.kind, "assigned");
    if (res.kind === "assigned") await tier.dispatch.complete(turnId, res.assignment.leaseId, {});
  });

  test(`${name}: turns of a thread run one at a time, in submission order`, async (t) => {
    const threadId = await newThread();
    const first = await submit(threadId);
    const second = await submit(threadId);
    t.true((await tier.dispatch.readyThreads(1000)).includes(threadId));
    const a = await claimed(threadId);
    t.is(a.turn.turnId, first);
    t.like(a, { attempt: 1 });
    t.like(a.turn, { status: "running", attempt: 1, agentId: "agent-a" });
    t.is(a.thread.threadId, threadId);
    t.true(a.leaseExpiresAt > Date.now());
    t.is((await tier.dispatch.claim(threadId, "agent-a")).kind, "none", "the second turn waits for the first");
    t.false((await tier.dispatch.readyThreads(1000)).includes(threadId));

    const done = await tier.dispatch.complete(first, a.leaseId, { answer: 42 });
    t.like(done, { status: "completed", output: { answer: 42 }, attempt: 1 });
    t.truthy(done.endedAt);
    const b = await claimed(threadId);
    t.is(b.turn.turnId, second);
    await tier.dispatch.complete(second, b.leaseId, {});
    t.deepEqual(await types(threadId), [
      "thread.created", "turn.submitted", "turn.submitted", "turn.started", "turn.completed", "turn.started", "turn.completed",
    ]);
    const started = (await tier.hot.read(threadId, 3, 1))[0];
    t.like(started, { turnId: first, payload: { attempt: 1, agent_id: "agent-a" } });
    t.is((await tier.hot.getThread(threadId))!.status, "idle");
    t.like(await tier.hot.getTurn(first), { status: "completed", output: { answer: 42 } });
    t.true(notices.some((n) => n.kind === "lease-ended" && n.leaseId === a.leaseId && !n.cancelled));
  });

  test(`${name}: a lease renews while it holds, and is lost once the turn ended`, async (t) => {
    const threadId = await newThread();
    const turnId = await submit(threadId);
    const a = await claimed(threadId);
    const renewed = await tier.dispatch.renew(a.leaseId);
    t.true(renewed >= a.leaseExpiresAt);
    t.true(await tier.dispatch.holds(a.leaseId));
    await t.throwsAsync(tier.dispatch.complete(turnId, `${threadId}.${ulid()}`, {}), { instanceOf: LeaseLost });
    await tier.dispatch.complete(turnId, a.leaseId, {});
    t.false(await tier.dispatch.holds(a.leaseId));
    await t.throwsAsync(tier.dispatch.renew(a.leaseId), { instanceOf: LeaseLost });
    await t.throwsAsync(tier.dispatch.complete(turnId, a.leaseId, {}), { instanceOf: LeaseLost });
    await t.throwsAsync(tier.dispatch.renew("not-a-lease"), { instanceOf: LeaseLost });
  });

  test(`${name}: appends to a running turn need its current lease (fencing); a queued one takes none`, async (t) => {
    const threadId = await newThread();
    const turnId = await submit(threadId);
    const append = (leaseId?: string) => tier.hot.append({ tenantId: "acme", threadId, turnId, leaseId, events: [newEvent("message.delta", { turnId })] });
    await t.throwsAsync(append(), { instanceOf: TurnNotStarted }, "no agent runs it yet");
    await t.throwsAsync(append(`${threadId}.${ulid()}`), { instanceOf: LeaseLost });
    const a = await claimed(threadId);
    const before = (await tier.hot.getThread(threadId))!.lastSeq;
    t.is(before, 3, "the refusals before the claim wrote nothing");
    await t.throwsAsync(append(), { instanceOf: LeaseLost, message: /lease_id is required/ });
    await t.throwsAsync(append(`${threadId}.${ulid()}`), { instanceOf: LeaseLost });
    t.is((await tier.hot.getThread(threadId))!.lastSeq, before, "refused appends wrote nothing");
    const ok = await append(a.leaseId);
    t.is(ok.kind, "appended");
    await tier.dispatch.cancel(threadId, turnId, "acme", "stop");
    await t.throwsAsync(append(a.leaseId), { instanceOf: TurnCancelled });
    await t.throwsAsync(tier.dispatch.renew(a.leaseId), { instanceOf: TurnCancelled });
    await t.throwsAsync(tier.dispatch.complete(turnId, a.leaseId, {}), { instanceOf: TurnCancelled });
  });

  test(`${name}: a retryable failure backs off and retries, then dead-letters after max attempts`, async (t) => {
    const threadId = await newThread();
    const turnId = await submit(threadId);
    const a = await claimed(threadId, "agent-a");
    const retrying = await tier.dispatch.fail(turnId, a.leaseId, "flaky", true);
    t.like(retrying, { status: "queued", attempt: 1, error: "flaky" });
    t.is((await tier.dispatch.claim(threadId, "agent-b")).kind, "none", "not before the backoff");
    await sleep(contractPolicy.backoffBaseMs + 50, new AbortController().signal);
    t.true((await tier.dispatch.readyThreads(1000)).includes(threadId));
    const b = await claimed(threadId, "agent-b");
    t.is(b.attempt, 2, "another agent may take the retry: it does not stick to the one that failed");
    const dead = await tier.dispatch.fail(turnId, b.leaseId, "flaky again", true);
    t.like(dead, { status: "dead_lettered", attempt: 2, error: "flaky again" });
    t.deepEqual((await types(threadId)).slice(2), ["turn.started", "turn.retrying", "turn.started", "turn.dead_lettered"]);
    const retryEvent = (await tier.hot.read(threadId, 0, 100)).find((e) => e.type === "turn.retrying")!;
    t.like(retryEvent, { level: "warn", payload: { attempt: 1, error: "flaky" } });
    t.is((await tier.hot.getThread(threadId))!.status, "idle");
  });

  test(`${name}: a non-retryable failure ends the turn`, async (t) => {
    const threadId = await newThread();
    const turnId = await submit(threadId);
    const a = await claimed(threadId);
    t.like(await tier.dispatch.fail(turnId, a.leaseId, "bad input", false), { status: "failed", error: "bad input" });
    t.is((await types(threadId)).at(-1), "turn.failed");
  });

  test(`${name}: cancelling a queued turn removes it; cancelling a running one revokes its lease`, async (t) => {
    const threadId = await newThread();
    const running = await submit(threadId);
    const queued = await submit(threadId);
    const last = await submit(threadId);
    const a = await claimed(threadId);
    t.like(await tier.dispatch.cancel(threadId, queued, "acme", "not needed"), { status: "cancelled" });
    await t.throwsAsync(tier.dispatch.cancel(threadId, queued, "other-tenant", "x"), { instanceOf: NotFound });
    t.like(await tier.dispatch.cancel(threadId, running, undefined, "user hit stop"), { status: "cancelled" });
    t.true(notices.some((n) => n.kind === "lease-ended" && n.leaseId === a.leaseId && n.cancelled));
    await t.throwsAsync(tier.dispatch.renew(a.leaseId), { instanceOf: TurnCancelled });
    const next = await claimed(threadId);
    t.is(next.turn.turnId, last, "the cancelled queued turn never runs");
    const again = await tier.dispatch.cancel(threadId, running, "acme", "twice");
    t.is(again.status, "cancelled", "an ended turn is returned unchanged");
    const cancelled = (await tier.hot.read(threadId, 0, 100)).filter((e) => e.type === "turn.cancelled");
    t.deepEqual(cancelled.map((e) => [e.turnId, e.payload.was]), [[queued, "queued"], [running, "running"]]);
  });

  test(`${name}: a lapsed lease is requeued as a retry; a stale release does nothing`, async (t) => {
    const threadId = await newThread();
    const turnId = await submit(threadId);
    const a = await claimed(threadId);
    await tier.dispatch.release(a.leaseId, "lease lapsed", true);
    t.like(await tier.hot.getTurn(turnId), { status: "running" }, "a live lease is not released as lapsed");
    await sleep(contractPolicy.leaseTtlMs + 100, new AbortController().signal);
    t.true((await tier.dispatch.lapsedLeases(10_000)).includes(a.leaseId));
    await tier.dispatch.release(a.leaseId, "lease lapsed", true);
    t.like(await tier.hot.getTurn(turnId), { status: "queued", attempt: 1, error: "lease lapsed" });
    t.false((await tier.dispatch.lapsedLeases(10_000)).includes(a.leaseId));
    await tier.dispatch.release(a.leaseId, "lease lapsed", true);
    t.is((await types(threadId)).filter((x) => x === "turn.retrying").length, 1, "released once");
    const before = (await tier.hot.getThread(threadId))!.lastSeq;
    await t.throwsAsync(
      tier.hot.append({ tenantId: "acme", threadId, turnId, leaseId: a.leaseId, events: [newEvent("message.delta", { turnId })] }),
      { instanceOf: LeaseLost },
      "the zombie is fenced off",
    );
    await t.throwsAsync(
      tier.hot.append({ tenantId: "acme", threadId, turnId, events: [newEvent("message.delta", { turnId })] }),
      { instanceOf: TurnNotStarted },
      "the requeued turn takes no events until an agent runs it again",
    );
    t.is((await tier.hot.getThread(threadId))!.lastSeq, before);
  });

  test(`${name}: a thread sticks to the agent that ran its last turn until it leaves`, async (t) => {
    const threadId = await newThread();
    const first = await submit(threadId);
    const a = await claimed(threadId, "agent-a");
    await tier.dispatch.complete(first, a.leaseId, {});
    await submit(threadId);
    t.is((await tier.dispatch.claim(threadId, "agent-b")).kind, "sticky");
    await tier.dispatch.unstick(threadId, "agent-b");
    t.is((await tier.dispatch.claim(threadId, "agent-b")).kind, "sticky", "only the sticky agent's leaving unsticks");
    await tier.dispatch.unstick(threadId, "agent-a");
    const b = await claimed(threadId, "agent-b");
    t.is(b.turn.agentId, "agent-b");
  });

  test(`${name}: rejectIfBusy refuses a turn while one is open and writes nothing`, async (t) => {
    const threadId = await newThread();
    await submit(threadId, { rejectIfBusy: true });
    const before = (await tier.hot.getThread(threadId))!.lastSeq;
    await t.throwsAsync(submit(threadId, { rejectIfBusy: true }), { instanceOf: ThreadBusy });
    t.is((await tier.hot.getThread(threadId))!.lastSeq, before);
    t.is((await tier.hot.threadTurns(threadId)).length, 1);
  });

  test(`${name}: a restored thread queues its open turns and requeues the one that was running`, async (t) => {
    const threadId = tier.hot.newThreadId();
    const now = Date.now();
    const base = { threadId, tenantId: "acme", input: {}, error: "", idempotencyKey: "", metadata: {}, createdAt: now, updatedAt: now };
    const [done, wasRunning, queued] = [ulid(), ulid(), ulid()];
    await tier.hot.restoreThread({ threadId, tenantId: "acme", status: "busy", lastSeq: 9, metadata: {}, createdAt: now, updatedAt: now }, [
      { ...base, turnId: queued, status: "queued", attempt: 0, agentId: "", submittedSeq: 8 },
      { ...base, turnId: done, status: "completed", attempt: 1, agentId: "x", submittedSeq: 2 },
      { ...base, turnId: wasRunning, status: "running", attempt: 1, agentId: "x", submittedSeq: 5 },
    ]);
    t.is((await tier.dispatch.claim(threadId, "agent-a")).kind, "none", "the running turn holds the thread");
    const lapsed = (await tier.dispatch.lapsedLeases(10_000)).filter((l) => l.startsWith(threadId));
    t.is(lapsed.length, 1);
    await tier.dispatch.release(lapsed[0], "lease lapsed", true);
    await sleep(contractPolicy.backoffBaseMs + 50, new AbortController().signal);
    const retry = await claimed(threadId, "agent-a");
    t.is(retry.turn.turnId, wasRunning);
    t.is(retry.attempt, 2);
    await tier.dispatch.complete(wasRunning, retry.leaseId, {});
    t.is((await claimed(threadId, "agent-a")).turn.turnId, queued);
    t.is((await tier.hot.read(threadId, 9, 1))[0].seq, 10, "seqs continue where the log stood");
  });

  test(`${name}: dispatch of a deleted thread stops`, async (t) => {
    const threadId = await newThread();
    await submit(threadId);
    await tier.hot.deleteThread(threadId);
    t.false((await tier.dispatch.readyThreads(10_000)).includes(threadId));
    t.is((await tier.dispatch.claim(threadId, "agent-a")).kind, "none");
  });
}
