// The reference agent: a plain AgentService client. It receives turns, streams
// a reply token by token as `message.delta` events (a deterministic echo of
// the input text), then `message.completed`, then completes the turn. It renews
// its leases and stops a turn when told it was cancelled or its lease is lost.
import { rootCertificates } from "node:tls";
import type { JsonObject } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { AgentService, type TurnAssignment } from "../../gen/eventide/v1/agent_service_pb.js";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { sleep } from "../../server/domain/wait.js";

export interface ReferenceAgentOptions {
  baseUrl: string;
  agentId: string;
  maxInFlight: number;
  /** Pause between two tokens (0: as fast as the server takes them). */
  tokenDelayMs: number;
  /** Sent as `Authorization: Bearer …` when the server has API keys. */
  apiKey?: string;
  /** A PEM certificate trusted beside the system CAs (its own server's self-signed TLS_CERT). */
  trustedCertPem?: string;
  log: Logger;
}

/** The reply the agent streams for an input: "You said: <text>" cut into word tokens. */
export function replyTokens(input: JsonObject): string[] {
  const text = typeof input.text === "string" ? input.text : JSON.stringify(input);
  return `You said: ${text}`.match(/\S+\s*/g) ?? [];
}

export class ReferenceAgent {
  private readonly agents: Client<typeof AgentService>;
  private readonly events: Client<typeof EventService>;
  /** turn id → how to stop it. */
  private readonly running = new Map<string, AbortController>();

  constructor(private readonly opts: ReferenceAgentOptions) {
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${opts.apiKey}`);
      return next(req);
    };
    const transport = createGrpcTransport({
      baseUrl: opts.baseUrl,
      interceptors: opts.apiKey ? [bearer] : [],
      nodeOptions: opts.trustedCertPem ? { ca: [...rootCertificates, opts.trustedCertPem] } : undefined,
    });
    this.agents = createClient(AgentService, transport);
    this.events = createClient(EventService, transport);
  }

  /** Receives turns until the signal aborts, reconnecting with backoff when the stream drops. */
  async run(signal: AbortSignal): Promise<void> {
    const { log } = this.opts;
    for (let failures = 0; !signal.aborted; ) {
      try {
        const feed = this.agents.receiveTurns({ agentId: this.opts.agentId, maxInFlight: this.opts.maxInFlight }, { signal });
        log.info({ agentId: this.opts.agentId, url: this.opts.baseUrl }, "reference agent receiving turns");
        for await (const res of feed) {
          failures = 0;
          if (res.item.case === "assignment") void this.runTurn(res.item.value, signal);
          else if (res.item.case === "cancellation") this.running.get(res.item.value.turnId)?.abort();
        }
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        log.warn({ err: String(err), failures }, "reference agent lost its feed; reconnecting");
      }
      await sleep(Math.min(5_000, 100 * 2 ** Math.min(failures, 6)), signal);
    }
    for (const stop of this.running.values()) stop.abort();
  }

  private async runTurn(a: TurnAssignment, feedSignal: AbortSignal): Promise<void> {
    const turn = a.turn!;
    const stop = new AbortController();
    const onFeedEnd = () => stop.abort();
    feedSignal.addEventListener("abort", onFeedEnd, { once: true });
    this.running.set(turn.turnId, stop);
    const renewing = this.keepLease(a, stop);
    const base = { threadId: turn.threadId, turnId: turn.turnId, leaseId: a.leaseId };
    const messageId = `msg-${turn.turnId}`;
    try {
      const tokens = replyTokens((turn.input ?? {}) as JsonObject);
      for (const [i, delta] of tokens.entries()) {
        if (stop.signal.aborted) return;
        // Ids fixed per attempt and token: a retried append is recognised, never doubled.
        const eventId = `${turn.turnId}-${a.attempt}-${i}`;
        await this.events.appendEvents({ ...base, events: [{ eventId, type: "message.delta", payload: { message_id: messageId, delta } }] });
        if (this.opts.tokenDelayMs > 0) await sleep(this.opts.tokenDelayMs, stop.signal);
      }
      if (stop.signal.aborted) return;
      const text = tokens.join("");
      await this.events.appendEvents({
        ...base,
        events: [{ eventId: `${turn.turnId}-${a.attempt}-done`, type: "message.completed", payload: { message_id: messageId, text } }],
      });
      await this.agents.completeTurn({ turnId: turn.turnId, leaseId: a.leaseId, output: { text } });
    } catch (err) {
      if (isStopped(err) || stop.signal.aborted) return;
      this.opts.log.warn({ err: String(err), turnId: turn.turnId }, "turn failed; asking for a retry");
      await this.agents.failTurn({ turnId: turn.turnId, leaseId: a.leaseId, error: String(err), retryable: true }).catch(() => {});
    } finally {
      stop.abort();
      await renewing;
      feedSignal.removeEventListener("abort", onFeedEnd);
      this.running.delete(turn.turnId);
    }
  }

  /** Renews at a third of the lease's life until the turn stops; a lost or cancelled lease stops it. */
  private async keepLease(a: TurnAssignment, stop: AbortController): Promise<void> {
    let expiresAt = a.leaseExpiresAt ? timestampMs(a.leaseExpiresAt) : Date.now() + 30_000;
    while (!stop.signal.aborted) {
      await sleep(Math.max(100, (expiresAt - Date.now()) / 3), stop.signal);
      if (stop.signal.aborted) return;
      try {
        const res = await this.agents.renewLease({ leaseId: a.leaseId });
        expiresAt = timestampMs(res.leaseExpiresAt!);
      } catch (err) {
        if (isStopped(err)) stop.abort();
      }
    }
  }
}

/** The server says this turn is no longer ours: cancelled, or the lease lapsed. */
function isStopped(err: unknown): boolean {
  const code = ConnectError.from(err).code;
  return code === Code.Canceled || code === Code.FailedPrecondition;
}
