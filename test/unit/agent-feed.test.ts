// An agent feed scans the ready sets (one command per partition) only when a scan could find
// something: not after claiming the thread a notice named when its last scan saw every ready
// thread, nor when a lease ends then; but when a notice could not be queued (no room), when
// room frees after such a notice, and when its wait times out (a notice may have been lost).
import test from "ava";
import pino from "pino";
import { agentFeed, type FeedItem } from "../../server/dispatch/agent-feed.js";
import type { ClaimResult, DispatchNotice, TurnDispatch } from "../../server/tiers/hot/turn-dispatch.js";

/** A dispatch tier in memory: ready threads, claims that always assign, and the notices the test sends. */
class FakeDispatch {
  ready: string[] = [];
  scans = 0;
  claims: string[] = [];
  private listeners = new Set<(n: DispatchNotice) => void>();

  async readyThreads(limit: number): Promise<string[]> {
    this.scans++;
    return this.ready.slice(0, limit);
  }

  async claim(threadId: string): Promise<ClaimResult> {
    this.claims.push(threadId);
    if (!this.ready.includes(threadId)) return { kind: "none" };
    this.ready = this.ready.filter((t) => t !== threadId);
    const leaseId = `lease-${threadId}`;
    const turn = { turnId: `turn-${threadId}`, threadId } as never;
    return { kind: "assigned", assignment: { turn, thread: { threadId } as never, leaseId, leaseExpiresAt: 0, attempt: 1 } };
  }

  async holds(): Promise<boolean> {
    return true;
  }

  subscribe(listener: (n: DispatchNotice) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A thread became ready: in the ready set, then the notice. */
  makeReady(threadId: string): void {
    this.ready.push(threadId);
    for (const l of this.listeners) l({ kind: "ready", threadId });
  }

  endLease(threadId: string): void {
    for (const l of this.listeners) l({ kind: "lease-ended", turnId: `turn-${threadId}`, leaseId: `lease-${threadId}`, cancelled: false });
  }
}

function startFeed(dispatch: FakeDispatch, maxInFlight: number, pollMs = 60_000) {
  const controller = new AbortController();
  const feed = agentFeed(
    { agentId: "a", maxInFlight, dispatch: dispatch as unknown as TurnDispatch, pollMs, log: pino({ level: "silent" }) },
    controller.signal,
  );
  return { feed, stop: () => controller.abort() };
}

/** The feed's next item, or undefined when none comes within `ms`. */
async function nextItem(feed: AsyncGenerator<FeedItem>, ms = 300): Promise<FeedItem | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  pending ??= feed.next();
  const r = await Promise.race([pending, timeout]);
  clearTimeout(timer);
  if (r === undefined) return undefined;
  pending = undefined;
  return r.done ? undefined : r.value;
}
let pending: Promise<IteratorResult<FeedItem>> | undefined;

test.serial("a noticed thread is claimed without a scan, and an ended lease starts none", async (t) => {
  pending = undefined;
  const dispatch = new FakeDispatch();
  const { feed, stop } = startFeed(dispatch, 4);
  t.teardown(() => {
    stop();
    void feed.return(undefined);
  });
  t.is(await nextItem(feed, 100), undefined); // the first round scans and finds nothing
  t.is(dispatch.scans, 1);

  dispatch.makeReady("t1");
  const item = await nextItem(feed);
  t.is(item?.kind, "assignment");
  t.deepEqual(dispatch.claims, ["t1"]);
  // The feed runs on as its stream pulls the next item (none comes).
  t.is(await nextItem(feed, 100), undefined);
  t.is(dispatch.scans, 1, "no scan after claiming the noticed thread");

  dispatch.endLease("t1");
  t.is(await nextItem(feed, 100), undefined);
  t.is(dispatch.scans, 1, "no scan when a lease ends and nothing was left for want of room");
});

test.serial("a notice that finds no room is claimed by a scan once room frees", async (t) => {
  pending = undefined;
  const dispatch = new FakeDispatch();
  const { feed, stop } = startFeed(dispatch, 1);
  t.teardown(() => {
    stop();
    void feed.return(undefined);
  });
  t.is(await nextItem(feed, 100), undefined);
  dispatch.makeReady("t1");
  t.is((await nextItem(feed))?.kind, "assignment");
  const scansBefore = dispatch.scans;

  dispatch.makeReady("t2"); // no room: not queued
  t.is(await nextItem(feed, 100), undefined);
  dispatch.endLease("t1");
  const item = await nextItem(feed);
  t.is(item?.kind === "assignment" ? item.assignment.turn.threadId : undefined, "t2");
  t.true(dispatch.scans > scansBefore, "the thread was found by a scan");
});

test.serial("a thread whose notice was lost is found when the wait times out", async (t) => {
  pending = undefined;
  const dispatch = new FakeDispatch();
  const { feed, stop } = startFeed(dispatch, 4, 200);
  t.teardown(() => {
    stop();
    void feed.return(undefined);
  });
  t.is(await nextItem(feed, 50), undefined);
  dispatch.ready.push("t1"); // ready, but no notice
  const item = await nextItem(feed, 1_000);
  t.is(item?.kind === "assignment" ? item.assignment.turn.threadId : undefined, "t1");
});
