// Domain errors, thrown inside the tiers and services; server/errors.ts maps
// them to Connect codes in one place.

export abstract class DomainError extends Error {
  override name = this.constructor.name;
}

/** Unknown id, another tenant's id, or a deleted thread: all look the same to the caller. */
export class NotFound extends DomainError {
  constructor(what: string, id: string) {
    super(`${what} ${JSON.stringify(id)} not found`);
  }
}

export class StaleExpectedSeq extends DomainError {
  constructor(readonly expected: number, readonly actual: number) {
    super(`expected_last_seq is ${expected} but the thread's last seq is ${actual}; nothing was written`);
  }
}

/** An event_id already used by a different event (another thread, or a batch that is not a retry). */
export class EventIdConflict extends DomainError {
  constructor(readonly eventId: string, readonly where: string) {
    super(`event_id ${JSON.stringify(eventId)} was already appended (${where}) by a different batch; nothing was written`);
  }
}

export class InvalidInput extends DomainError {}

/** A seq range that no tier holds any more (retention) or that does not exist yet. */
export class OutOfRange extends DomainError {}

/** A tier is unreachable; the call changed nothing. */
export class TierUnavailable extends DomainError {}

/** A hot-tier write landed on its Redis master but fewer replicas than configured confirmed it: retry with the same ids. */
export class ReplicasUnconfirmed extends DomainError {}

/** Stored data failed its integrity check; nothing from it is returned. */
export class DataLoss extends DomainError {}

/** Seqs of a thread that no tier holds although later ones exist: acknowledged events are missing. */
export class LogHole extends DataLoss {
  constructor(readonly threadId: string, readonly fromSeq: number, readonly toSeq: number, readonly detail: string) {
    super(`thread ${threadId} is missing seqs ${fromSeq}..${toSeq} (${detail})`);
  }
}

export interface ThreadGap {
  threadId: string;
  fromSeq: number;
  toSeq: number;
}

/**
 * A persister batch would leave holes in threads' warm logs: each gap's seqs
 * are neither persisted nor in the batch. Nothing was written.
 */
export class PersistGap extends DomainError {
  constructor(readonly gaps: ThreadGap[]) {
    super(`a batch would leave holes (${gaps.map((g) => `thread ${g.threadId} seqs ${g.fromSeq}..${g.toSeq}`).join(", ")}); nothing was written`);
  }
}

/** Someone else is working on it right now; retrying shortly will do (ABORTED). */
export class Busy extends DomainError {}

/** The thread already has an open turn and the caller asked not to queue behind it. */
export class ThreadBusy extends DomainError {}

/** The lease no longer holds (lapsed, taken over, or the turn ended): the agent must stop. */
export class LeaseLost extends DomainError {}

/** The turn is queued: its events come from the agent that runs it, under its lease (FAILED_PRECONDITION). */
export class TurnNotStarted extends DomainError {
  constructor(readonly turnId: string) {
    super(`turn ${turnId} is queued: its events come from the agent that runs it, with its lease_id; nothing was written`);
  }
}

/** The turn was cancelled by a client: the agent must stop (CANCELLED). */
export class TurnCancelled extends DomainError {}
