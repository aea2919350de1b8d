// One agent's work feed (AgentService.ReceiveTurns): claims ready turns up to
// the agent's max_in_flight, tells it when a held turn is cancelled, and
// requeues what it still holds when its stream ends.
import type { Logger } from "pino";
import { waitFor } from "../domain/wait.js";
import type { Assignment, DispatchNotice, TurnDispatch } from "../tiers/hot/turn-dispatch.js";

export type FeedItem = { kind: "assignment"; assignment: Assignment } | { kind: "cancellation"; turnId: string; leaseId: string };

export interface AgentFeedOptions {
  agentId: string;
  /** The tenant whose turns the agent runs; undefined = every tenant. */
  tenantId?: string;
  maxInFlight: number;
  dispatch: TurnDispatch;
  /** Notices are at most once: the feed also looks for work (and checks its leases) this often. */
  pollMs: number;
  log: Logger;
}

export async function* agentFeed(opts: AgentFeedOptions, signal: AbortSignal): AsyncGenerator<FeedItem> {
  const { dispatch, agentId } = opts;
  /** lease id → turn id of the turns this feed handed out and that have not ended. */
  const held = new Map<string, string>();
  /** Threads that stick to this agent because it ran their turns. */
  const ran = new Set<string>();
  /** Ready threads of tenants this agent does not serve, skipped without asking the tier again. */
  const foreign = new Set<string>();
  const outbox: FeedItem[] = [];
  /**
   * Threads named by ready notices that came while this feed's last scan had seen every ready
   * thread and it had room: no older turn waits for it, so they are claimed before the next scan,
   * a round trip sooner.
   */
  const noticed: string[] = [];
  let sawEveryReady = false;
  /**
   * Whether the next round scans the ready sets. Not while the last scan saw every ready thread
   * and every ready notice since is in `noticed`: a scan would find nothing more (a notice lost
   * meanwhile is found when the wait times out, which scans).
   */
  let scanDue = true;
  let wait = waitFor(0, signal);
  let workMaybe = true;

  const unsubscribe = dispatch.subscribe((notice: DispatchNotice) => {
    if (notice.kind === "ready") {
      workMaybe = true;
      if (sawEveryReady && held.size + noticed.length < opts.maxInFlight) noticed.push(notice.threadId);
      else scanDue = true;
    } else if (held.delete(notice.leaseId)) {
      // The turn ended (or was cancelled, or its lease lapsed): capacity is free again, for
      // threads the last scan left for want of it.
      if (notice.cancelled) outbox.push({ kind: "cancellation", turnId: notice.turnId, leaseId: notice.leaseId });
      workMaybe = true;
      if (!sawEveryReady) scanDue = true;
    } else {
      return;
    }
    wait.wake();
  });
  try {
    while (!signal.aborted) {
      while (outbox.length > 0) yield outbox.shift()!;
      if (workMaybe && held.size < opts.maxInFlight) {
        workMaybe = false;
        const claim = async (threadId: string): Promise<FeedItem | undefined> => {
          if (foreign.has(threadId)) return undefined;
          const claimed = await dispatch.claim(threadId, agentId, opts.tenantId);
          if (claimed.kind === "other-tenant") rememberForeign(foreign, threadId);
          if (claimed.kind !== "assigned") return undefined;
          const { assignment } = claimed;
          held.set(assignment.leaseId, assignment.turn.turnId);
          ran.add(threadId);
          opts.log.debug({ agentId, turnId: assignment.turn.turnId, attempt: assignment.attempt }, "turn assigned");
          return { kind: "assignment", assignment };
        };
        for (const threadId of noticed.splice(0)) {
          if (held.size >= opts.maxInFlight || signal.aborted) {
            scanDue = true; // the threads left out are in the ready sets
            break;
          }
          const item = await claim(threadId);
          if (item) yield item;
        }
        if (!scanDue && sawEveryReady) continue;
        scanDue = false;
        // Known foreign threads come first in the list too: ask for enough to see past them.
        const wanted = opts.maxInFlight - held.size + 16 + Math.min(foreign.size, maxForeignSkipped);
        const threads = await dispatch.readyThreads(wanted);
        sawEveryReady = false;
        let tried = 0;
        for (const threadId of threads) {
          if (held.size >= opts.maxInFlight || signal.aborted) break;
          tried++;
          const item = await claim(threadId);
          if (item) yield item;
        }
        sawEveryReady = threads.length < wanted && tried === threads.length && !signal.aborted;
        continue;
      }
      if (outbox.length > 0) continue;
      // Checked and created with no await in between: a notice from now on wakes this wait.
      wait = waitFor(opts.pollMs, signal);
      await wait.done;
      if (!workMaybe && outbox.length === 0 && !signal.aborted) {
        // Timed out: notices may have been lost, and retries come due without one.
        workMaybe = true;
        scanDue = true;
        await forgetEnded(dispatch, held);
      }
    }
  } finally {
    unsubscribe();
    await letGo(opts, held, ran);
  }
}

const maxForeignSkipped = 1_000;
const maxForeignRemembered = 10_000;

function rememberForeign(foreign: Set<string>, threadId: string): void {
  // Oldest first out: a Set iterates in insertion order.
  if (foreign.size >= maxForeignRemembered) foreign.delete(foreign.values().next().value!);
  foreign.add(threadId);
}

/** Leases that ended without a notice reaching this process (lost pub/sub message). */
async function forgetEnded(dispatch: TurnDispatch, held: Map<string, string>): Promise<void> {
  for (const leaseId of [...held.keys()]) {
    if (!(await dispatch.holds(leaseId))) held.delete(leaseId);
  }
}

/** The agent's stream ended: what it held is requeued (attempt + 1), its threads stop waiting for it. */
async function letGo(opts: AgentFeedOptions, held: Map<string, string>, ran: Set<string>): Promise<void> {
  try {
    for (const leaseId of held.keys()) await opts.dispatch.release(leaseId, `agent ${opts.agentId} disconnected`, false);
    for (const threadId of ran) await opts.dispatch.unstick(threadId, opts.agentId);
    if (held.size > 0) opts.log.info({ agentId: opts.agentId, requeued: held.size }, "agent left; its turns were requeued");
  } catch (err) {
    // The lease sweeper requeues them when their leases lapse.
    opts.log.warn({ err: String(err), agentId: opts.agentId }, "could not requeue a departed agent's turns");
  }
}
