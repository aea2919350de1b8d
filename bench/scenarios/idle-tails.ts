// Idle followed tails: `threads × tailsPerThread` TailEvents calls with
// follow=true, opened with the wire tail client on a few connections (at
// most `opening` catching up at once), each caught up (thread.created, then
// caught_up) and then left alone for `idleSeconds` (as long a quiet comes before
// the RSS before them is read). What a server holds for
// tails that cost nothing but memory: its resident memory (VmRSS) before and
// with them, its CPU per tail opened and while idle. On a child of its own
// (eventide's server role, or the floor), started for this scenario: the
// memory others' data left behind is not counted, and this scenario's heap
// does not weigh on theirs.
import { Connections } from "../connections.js";
import { nowMs, sleep, within } from "../clock.js";
import { rssMb, startCpuMeter } from "../process-stats.js";
import { layoutRow, type Goal, type Measurement, type ScenarioResult } from "../result.js";
import { type ServerUnderTest, withOwnServer } from "../server-under-test.js";
import { freshTierEnv, isFloor, type Services, type Tier } from "../tier-env.js";
import { WireSessions } from "../wire-sessions.js";
import { eventSeq, wireTail } from "../wire-tail-client.js";

export interface IdleTailsParams {
  name: string;
  tier: Tier;
  services: Services;
  logLevel: string;
  profileDir?: string;
  threads: number;
  tailsPerThread: number;
  connections: number;
  /** Tails opened but not yet caught up, at most: 10,000 at once is a stampede, not idle tails. */
  opening: number;
  idleSeconds: number;
  rssGoal?: Goal;
}

const openTimeoutMs = 120_000;
const closeTimeoutMs = 30_000;

export async function idleTails(p: IdleTailsParams): Promise<ScenarioResult> {
  const failures: string[] = [];
  const notes: string[] = [];
  const tiers = freshTierEnv(p.tier, p.services);
  const options = { tiers, ownsTiers: true, logLevel: p.logLevel, profileDir: p.profileDir, roles: p.tier === "redis" ? "server" : "server,persister" };
  const who = `${p.name}: its ${isFloor(p.tier) ? "floor" : "server"}`;
  const result = await withOwnServer(options, who, failures, notes, (server) => followIdle(server, p));
  return {
    measurements: [layoutRow(p.name, "own child"), ...result.measurements],
    failures: [...failures, ...result.failures],
    notes: [...notes, ...result.notes],
  };
}

async function followIdle(server: ServerUnderTest, p: IdleTailsParams): Promise<ScenarioResult> {
  const setup = new Connections(server.baseUrl, 1);
  // Connected after the quiet below: the server closes a connection idle for EVENTIDE_IDLE_TIMEOUT (30 s).
  let sessions: WireSessions | undefined;
  const failures: string[] = [];
  const problems: string[] = [];
  const cancels: (() => void)[] = [];
  const ended: Promise<void>[] = [];
  try {
    const threadIds = await setup.createThreads(p.threads);
    // Measured after the same quiet as the tails are: eventide gives back the heap a burst grew
    // once it is quiet (EVENTIDE_IDLE_HEAP_TRIM), so right after the threads' creation would
    // count that burst's heap as "before" and make the tails look free.
    await sleep(p.idleSeconds * 1000);
    const rssBefore = rssMb(server.pid);
    const wire = (sessions = new WireSessions(server.baseUrl, p.connections));
    const tails = p.threads * p.tailsPerThread;
    const opening = startCpuMeter(server.pid);
    const started = nowMs();
    const caughtUp: Promise<void>[] = [];
    let catchingUp = 0;
    let slotFreed: (() => void) | undefined;
    const deadline = started + openTimeoutMs;
    for (let i = 0; i < tails; i++) {
      while (catchingUp >= p.opening && nowMs() < deadline) await within(new Promise<void>((resolve) => (slotFreed = resolve)), deadline - nowMs());
      if (catchingUp >= p.opening) break;
      catchingUp++;
      let seen = 0;
      let markCaughtUp!: () => void;
      let markEnded!: () => void;
      caughtUp.push(
        new Promise<void>((resolve) => (markCaughtUp = resolve)).then(() => {
          catchingUp--;
          slotFreed?.();
        }),
      );
      ended.push(new Promise<void>((resolve) => (markEnded = resolve)));
      const threadId = threadIds[i % p.threads];
      let cancelled = false;
      const cancel = wireTail(wire.session(i), { threadId, follow: true }, {
        event(buf, from, end) {
          // Each thread holds thread.created (seq 1) only.
          if (eventSeq(buf, from, end) !== ++seen && problems.length < 3) problems.push(`tail ${i}: seq ${eventSeq(buf, from, end)} as event ${seen}`);
        },
        caughtUp(lastSeq) {
          if ((lastSeq !== 1 || seen !== 1) && problems.length < 3) problems.push(`tail ${i}: caught up at ${lastSeq} after ${seen} events`);
          markCaughtUp();
        },
        ended(problem) {
          if (!cancelled && problems.length < 3) problems.push(`tail ${i} ended: ${problem ?? "with status OK while following"}`);
          markCaughtUp();
          markEnded();
        },
      });
      cancels.push(() => {
        cancelled = true;
        cancel();
      });
    }
    const allCaughtUp = caughtUp.length === tails && (await within(Promise.all(caughtUp), Math.max(0, deadline - nowMs())));
    const openMs = nowMs() - started;
    const opened = opening();
    if (!allCaughtUp) failures.push(`${p.name}: not every tail caught up within ${openTimeoutMs} ms`);

    const idle = startCpuMeter(server.pid);
    await sleep(p.idleSeconds * 1000);
    const idleSpent = idle();
    const rssWith = rssMb(server.pid);
    for (const cancel of cancels) cancel();
    if (!(await within(Promise.all(ended), closeTimeoutMs))) {
      problems.push(`the tails had not all ended ${closeTimeoutMs} ms after being cancelled`);
    }
    failures.push(...problems.map((f) => `${p.name}: ${f}`));
    const row = (metric: string, value: number, unit: Measurement["unit"], goal?: Goal): Measurement => ({ scenario: p.name, metric, value, unit, goal });
    return {
      measurements: [
        row("tails followed", tails, "count"),
        row("all caught up after", openMs, "ms"),
        row("server RSS before the tails", rssBefore, "MB"),
        row("server RSS with the tails", rssWith, "MB", p.rssGoal),
        row("server RSS per tail", ((rssWith - rssBefore) * 1000) / tails, "kB"),
        row("server CPU per tail opened", opened.server / tails, "µs"),
        row("bench process CPU per tail opened", opened.bench / tails, "µs"),
        row(`server CPU while idle, share of one core`, (idleSpent.server / 1e6 / idleSpent.wallSeconds) * 100, "%"),
      ],
      failures,
      notes: wire.errors.map((e) => `${p.name}: ${e}`),
    };
  } finally {
    sessions?.close();
    setup.close();
  }
}
