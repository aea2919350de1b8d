// Keeps a turn's lease alive: renews it at a third of its time to live until
// the turn ends. A renewal refused as cancelled or lapsed stops the turn.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, type Client, ConnectError } from "@connectrpc/connect";
import type { AgentService, TurnAssignment } from "../../../../gen/eventide/v1/agent_service_pb.js";
import { type Backoff, backoffMs, sleep } from "../retry.js";
import type { TurnStopReason } from "./turn-stopped.js";

export interface LeaseKeeperOptions {
  agents: Client<typeof AgentService>;
  assignment: TurnAssignment;
  /** Renewing ends when this aborts (the turn ended or stopped). */
  signal: AbortSignal;
  stop(reason: TurnStopReason): void;
  timeoutMs: number;
  backoff?: Backoff;
}

export async function keepLease(opts: LeaseKeeperOptions): Promise<void> {
  const { assignment: a, signal } = opts;
  let expiresAt = a.leaseExpiresAt ? timestampMs(a.leaseExpiresAt) : Date.now() + 30_000;
  const third = () => Math.max(50, (expiresAt - Date.now()) / 3);
  let waitMs = third();
  for (let failures = 0; ; ) {
    await sleep(waitMs, signal);
    if (signal.aborted) return;
    try {
      const res = await opts.agents.renewLease({ leaseId: a.leaseId }, { signal, timeoutMs: Math.min(opts.timeoutMs, third()) });
      expiresAt = res.leaseExpiresAt ? timestampMs(res.leaseExpiresAt) : Date.now() + 30_000;
      failures = 0;
      waitMs = third();
    } catch (err) {
      if (signal.aborted) return;
      const code = ConnectError.from(err).code;
      if (code === Code.Canceled) return opts.stop("cancelled");
      if (code === Code.FailedPrecondition || code === Code.NotFound) return opts.stop("lease-lost");
      // Unreachable or slow: try again soon; the server answers for a lapsed lease once it is back.
      waitMs = Math.min(backoffMs(++failures, opts.backoff), third());
    }
  }
}
