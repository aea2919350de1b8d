// eventide's client: the raw service clients plus what every user would
// otherwise write by hand — a resuming tail, retry-safe writes, an agent loop.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { ulid } from "ulid";
import { AgentService } from "../../../gen/eventide/v1/agent_service_pb.js";
import { type AppendEventsResponse, EventService } from "../../../gen/eventide/v1/event_service_pb.js";
import type { EventInputSchema } from "../../../gen/eventide/v1/resources_pb.js";
import { type SubmitTurnRequestSchema, type SubmitTurnResponse, TurnService } from "../../../gen/eventide/v1/turn_service_pb.js";
import { type RunAgentOptions, runAgent } from "./agent/run-agent.js";
import type { CallPolicy } from "./options.js";
import { retrying } from "./retry.js";
import { type Tail, type TailOptions, tailThread } from "./tail.js";

export type EventInit = MessageInitShape<typeof EventInputSchema>;
export type SubmitTurnInit = MessageInitShape<typeof SubmitTurnRequestSchema>;

export interface AppendOptions {
  /** Append only if the thread's last seq is exactly this. */
  expectedLastSeq?: number | bigint;
  turnId?: string;
  leaseId?: string;
  signal?: AbortSignal;
}

export class EventideClient {
  readonly events: Client<typeof EventService>;
  readonly turns: Client<typeof TurnService>;
  readonly agents: Client<typeof AgentService>;

  constructor(
    readonly transport: Transport,
    readonly policy: CallPolicy = {},
  ) {
    this.events = createClient(EventService, transport);
    this.turns = createClient(TurnService, transport);
    this.agents = createClient(AgentService, transport);
  }

  /** The thread's events after `afterSeq`, each once and in order, across disconnects and restarts. */
  tail(threadId: string, options: TailOptions = {}): Tail {
    return tailThread(this.events, threadId, options);
  }

  /**
   * Appends events; those without an id get a ULID here, once, so a retry
   * after UNAVAILABLE or a timeout returns the original seqs instead of
   * appending twice.
   */
  append(threadId: string, events: EventInit[], options: AppendOptions = {}): Promise<AppendEventsResponse> {
    const withIds = events.map((e) => ({ ...e, eventId: e.eventId || ulid() }));
    const request = {
      threadId,
      events: withIds,
      turnId: options.turnId,
      leaseId: options.leaseId,
      expectedLastSeq: options.expectedLastSeq === undefined ? undefined : BigInt(options.expectedLastSeq),
    };
    return this.retrying((callOptions) => this.events.appendEvents(request, callOptions), options.signal);
  }

  /** Submits a turn under an idempotency key (one is made up when absent), so a retry never runs it twice. */
  submitTurn(request: SubmitTurnInit, options: { signal?: AbortSignal } = {}): Promise<SubmitTurnResponse> {
    const keyed = { ...request, idempotencyKey: request.idempotencyKey || ulid() };
    return this.retrying((callOptions) => this.turns.submitTurn(keyed, callOptions), options.signal);
  }

  /** Runs an agent: receives turns until the signal aborts, then drains. */
  runAgent(options: RunAgentOptions): Promise<void> {
    return runAgent(this, options);
  }

  /** A unary call with the policy's deadline, retried on UNAVAILABLE and DEADLINE_EXCEEDED only. */
  retrying<T>(call: (options: { timeoutMs: number; signal?: AbortSignal }) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const timeoutMs = this.policy.timeoutMs ?? 10_000;
    return retrying(() => call({ timeoutMs, signal }), { signal, backoff: this.policy.backoff, giveUpAfterMs: this.policy.retryForMs });
  }
}

export function createEventideClient(transport: Transport, policy: CallPolicy = {}): EventideClient {
  return new EventideClient(transport, policy);
}
