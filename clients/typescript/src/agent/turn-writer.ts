// What an agent writes for one turn: token deltas coalesced for a few ms into
// one AppendEvents, other events, and the outcome. Event ids are fixed per
// attempt (turn, attempt, position), so a retried append is recognised by the
// server and never doubled.
import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { TurnAssignment } from "../../../../gen/eventide/v1/agent_service_pb.js";
import { TurnStatus } from "../../../../gen/eventide/v1/resources_pb.js";
import type { EventideClient, EventInit } from "../client.js";
import { isTransient } from "../retry.js";

export interface TurnWriterOptions {
  client: EventideClient;
  assignment: TurnAssignment;
  /** The turn's signal: once it fires nothing more is written. */
  signal: AbortSignal;
  /** The server refused a write under this lease: it lapsed or was taken back. */
  onLeaseLost(): void;
  /** How long deltas gather before they go out together. */
  coalesceMs: number;
}

export class TurnWriter {
  /** AppendEvents requests sent (retries included). */
  appendCalls = 0;
  /** The message's text so far: every delta, in order. */
  text = "";
  /** complete() or fail() was called: the turn's outcome is written (or being written). */
  settled = false;
  readonly messageId: string;
  private pending: EventInit[] = [];
  private nextIndex = 0;
  private timer?: ReturnType<typeof setTimeout>;
  /** The appends in flight, in order: each waits for the one before. */
  private chain: Promise<void> = Promise.resolve();
  private readonly turnId: string;
  private readonly threadId: string;
  /** A write that failed for good: the message has a hole, so nothing more is written. */
  private failure?: unknown;

  constructor(private readonly opts: TurnWriterOptions) {
    this.turnId = opts.assignment.turn!.turnId;
    this.threadId = opts.assignment.turn!.threadId;
    this.messageId = `msg-${this.turnId}`;
  }

  /** Adds a token to the reply: sent with the others that arrive within the coalescing window. */
  delta(text: string): void {
    this.throwIfStopped();
    this.throwIfSettled();
    this.text += text;
    const last = this.pending.at(-1);
    if (last?.type === "message.delta") (last.payload as { delta: string }).delta += text;
    else this.pending.push(this.next("message.delta", { message_id: this.messageId, delta: text }));
    this.timer ??= setTimeout(() => void this.flush().catch(() => {}), this.opts.coalesceMs);
  }

  /** Appends an event of the agent's own (after the deltas before it); resolves once it is stored. */
  event(type: string, payload: JsonObject = {}): Promise<void> {
    this.throwIfStopped();
    this.throwIfSettled();
    this.pending.push(this.next(type, payload));
    return this.flush();
  }

  /** Sends what is pending now; resolves once everything written so far is stored. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      this.chain = this.chain.then(() =>
        this.send(batch).catch((err) => {
          this.failure ??= err;
          throw err;
        }),
      );
      // A write nobody awaits (a delta's timer) must not become an unhandled rejection; awaiting callers still see it.
      this.chain.catch(() => {});
    }
    return this.chain;
  }

  /** Ends the message (`message.completed` with its text, when it had deltas) and completes the turn. */
  async complete(output?: JsonObject): Promise<void> {
    this.throwIfStopped();
    this.throwIfSettled();
    this.settled = true;
    if (this.text) this.pending.push(this.next("message.completed", { message_id: this.messageId, text: this.text }));
    await this.flush();
    const { client, assignment } = this.opts;
    await this.settle(
      (o) => client.agents.completeTurn({ turnId: this.turnId, leaseId: assignment.leaseId, output: output ?? { text: this.text } }, o),
      TurnStatus.COMPLETED,
    );
  }

  /** Fails the turn: a retryable failure runs it again (attempt + 1), up to the server's max attempts. */
  async fail(error: unknown, options: { retryable?: boolean } = {}): Promise<void> {
    if (this.opts.signal.aborted) throw this.opts.signal.reason; // a failed write does not keep the failure from being told
    this.settled = true;
    await this.flush().catch(() => {});
    const { client, assignment } = this.opts;
    const message = (error instanceof Error ? error.message : String(error)).slice(0, 4096);
    await this.settle(
      (o) => client.agents.failTurn({ turnId: this.turnId, leaseId: assignment.leaseId, error: message, retryable: options.retryable ?? true }, o),
      undefined,
    );
  }

  private next(type: string, payload: JsonObject): EventInit {
    return { eventId: `${this.turnId}-${this.opts.assignment.attempt}-${this.nextIndex++}`, type, payload };
  }

  private async send(events: EventInit[]): Promise<void> {
    const { client, assignment, signal } = this.opts;
    const request = { threadId: this.threadId, turnId: this.turnId, leaseId: assignment.leaseId, events };
    try {
      await client.retrying((o) => {
        this.appendCalls++;
        return client.events.appendEvents(request, o);
      }, signal);
    } catch (err) {
      if (ConnectError.from(err).code === Code.FailedPrecondition) this.opts.onLeaseLost();
      throw err;
    }
  }

  /**
   * CompleteTurn / FailTurn, retried on UNAVAILABLE and timeouts. A retry of a
   * call that did land is refused (the lease ended with it): the turn's status
   * then says whether it was ours.
   */
  private async settle(call: (o: { timeoutMs: number; signal?: AbortSignal }) => Promise<unknown>, expected: TurnStatus | undefined): Promise<void> {
    const { client, signal } = this.opts;
    let tries = 0;
    try {
      await client.retrying((o) => {
        tries++;
        return call(o);
      }, signal);
    } catch (err) {
      const code = ConnectError.from(err).code;
      if (code === Code.FailedPrecondition && tries > 1 && expected !== undefined) {
        const { turn } = await client.turns.getTurn({ turnId: this.turnId });
        if (turn?.status === expected) return;
      }
      if (code === Code.FailedPrecondition) this.opts.onLeaseLost();
      throw err;
    }
  }

  private throwIfSettled(): void {
    if (this.settled) throw new Error(`turn ${this.turnId}: its outcome is already written`);
  }

  private throwIfStopped(): void {
    if (this.opts.signal.aborted) throw this.opts.signal.reason;
    if (this.failure !== undefined) throw this.failure;
  }
}
