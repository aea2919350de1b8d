// The ReceiveTurns loop of an agent: receives turn assignments (reconnecting
// with backoff when the feed drops), runs each in its handler with a turn
// writer and a signal that fires on cancellation, lease loss and shutdown,
// keeps each lease alive, and drains when its own signal aborts.
import type { JsonObject } from "@bufbuild/protobuf";
import type { Thread, Turn } from "../../../../gen/eventide/v1/resources_pb.js";
import type { TurnAssignment } from "../../../../gen/eventide/v1/agent_service_pb.js";
import type { EventideClient } from "../client.js";
import { type Backoff, backoffMs, sleep } from "../retry.js";
import { isTerminal } from "../terminal-codes.js";
import { keepLease } from "./lease-keeper.js";
import { TurnStopped, type TurnStopReason } from "./turn-stopped.js";
import { TurnWriter } from "./turn-writer.js";

/** One turn as its handler sees it. */
export interface AgentTurn {
  turn: Turn;
  thread?: Thread;
  /** 1 on the first run. */
  attempt: number;
  leaseId: string;
  input: JsonObject;
  /** Fires on cancellation, lease loss and shutdown; its reason is a TurnStopped. */
  signal: AbortSignal;
  writer: TurnWriter;
}

/**
 * Runs one turn. Returning without complete() or fail() completes the turn
 * with what it returned (default `{ text }` of the deltas); throwing fails it
 * as retryable (unless the turn was stopped: then nothing more is written).
 */
export type TurnHandler = (turn: AgentTurn) => Promise<JsonObject | void> | JsonObject | void;

export interface RunAgentOptions {
  /** The agent's stable id. */
  agentId: string;
  /** Turns run at once (default 1). */
  maxInFlight?: number;
  handler: TurnHandler;
  /** Aborting it drains the agent: no new turn starts, running ones get `drainTimeoutMs` to finish. */
  signal: AbortSignal;
  /** The window in which deltas gather into one AppendEvents (default 20 ms). */
  coalesceMs?: number;
  /** On shutdown, how long running turns may go on before their signals fire (default 10 s). */
  drainTimeoutMs?: number;
  backoff?: Backoff;
  /** The feed dropped; it reconnects after `delayMs`. */
  onReconnect?(info: { failures: number; reason: string; delayMs: number }): void;
  /** A turn's handler or outcome failed (the turn was failed as retryable, if it could be). */
  onTurnError?(error: unknown, assignment: TurnAssignment): void;
}

interface RunningTurn {
  stop(reason: TurnStopReason): void;
  done: Promise<void>;
}

export async function runAgent(client: EventideClient, opts: RunAgentOptions): Promise<void> {
  const { signal } = opts;
  /** lease id → the turn running under it. */
  const running = new Map<string, RunningTurn>();
  const feedStop = new AbortController();
  let fatal: unknown;

  const feed = (async () => {
    for (let failures = 0; !feedStop.signal.aborted; ) {
      let reason = "the feed ended";
      try {
        const stream = client.agents.receiveTurns({ agentId: opts.agentId, maxInFlight: opts.maxInFlight ?? 1 }, { signal: feedStop.signal });
        for await (const res of stream) {
          failures = 0;
          if (res.item.case === "assignment") {
            // Draining: a turn handed out now is left alone; closing the feed requeues it.
            if (!signal.aborted) running.set(res.item.value.leaseId, startTurn(res.item.value));
          } else if (res.item.case === "cancellation") {
            running.get(res.item.value.leaseId)?.stop("cancelled");
          }
        }
      } catch (err) {
        if (feedStop.signal.aborted) return;
        if (isTerminal(err)) {
          fatal = err;
          return;
        }
        reason = String(err);
      }
      const delayMs = backoffMs(++failures, opts.backoff);
      opts.onReconnect?.({ failures, reason, delayMs });
      await sleep(delayMs, feedStop.signal);
    }
  })();

  function startTurn(a: TurnAssignment): RunningTurn {
    const turn = a.turn!;
    const stopper = new AbortController();
    const stop = (reason: TurnStopReason) => {
      if (!stopper.signal.aborted) stopper.abort(new TurnStopped(reason, turn.turnId));
    };
    const leaseStop = new AbortController();
    const renewing = keepLease({
      agents: client.agents,
      assignment: a,
      signal: AbortSignal.any([leaseStop.signal, stopper.signal]),
      stop,
      timeoutMs: client.policy.timeoutMs ?? 10_000,
      backoff: opts.backoff,
    });
    const writer = new TurnWriter({ client, assignment: a, signal: stopper.signal, onLeaseLost: () => stop("lease-lost"), coalesceMs: opts.coalesceMs ?? 20 });
    const done = (async () => {
      try {
        const output = await opts.handler({
          turn,
          thread: a.thread,
          attempt: a.attempt,
          leaseId: a.leaseId,
          input: (turn.input ?? {}) as JsonObject,
          signal: stopper.signal,
          writer,
        });
        if (!writer.settled && !stopper.signal.aborted) await writer.complete(output ?? undefined);
      } catch (err) {
        if (stopper.signal.aborted) return; // cancelled, lease lost, shutting down: not this agent's to settle
        opts.onTurnError?.(err, a);
        if (!writer.settled) await writer.fail(err, { retryable: true }).catch((e) => opts.onTurnError?.(e, a));
      } finally {
        leaseStop.abort();
        await renewing;
        running.delete(a.leaseId);
      }
    })();
    return { stop, done };
  }

  const stopped = new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
  await Promise.race([stopped, feed]);

  // Drain: running turns get their time, then their signals fire; the feed closes last (requeuing what is left).
  const drainEnd = new AbortController();
  const allDone = () => Promise.all([...running.values()].map((r) => r.done));
  if (fatal === undefined) await Promise.race([allDone(), sleep(opts.drainTimeoutMs ?? 10_000, drainEnd.signal)]);
  drainEnd.abort();
  for (const r of running.values()) r.stop("shutdown");
  await allDone();
  feedStop.abort();
  await feed;
  if (fatal !== undefined) throw fatal;
}
