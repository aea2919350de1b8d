// Why a running turn's signal fired: its handler should stop and write nothing more.

/** cancelled: a user cancelled the turn. lease-lost: the lease lapsed or was taken back. shutdown: the agent is stopping. */
export type TurnStopReason = "cancelled" | "lease-lost" | "shutdown";

export class TurnStopped extends Error {
  override readonly name = "TurnStopped";

  constructor(
    readonly reason: TurnStopReason,
    readonly turnId: string,
  ) {
    super(`turn ${turnId} stopped: ${reason}`);
  }
}
