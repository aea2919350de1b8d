// The reference agent, built on @eventide/client's runAgent: it streams a
// reply token by token as `message.delta` events (a deterministic echo of the
// input text), then `message.completed`, then completes the turn. Leases,
// cancellation, reconnects and retry-safe event ids are the client's.
import { rootCertificates } from "node:tls";
import type { JsonObject } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { createNodeClient, type EventideClient } from "../../clients/typescript/src/node.js";
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

/** Tokens closer together than this go out in one append. */
const coalesceMs = 10;

export class ReferenceAgent {
  private readonly client: EventideClient;

  constructor(private readonly opts: ReferenceAgentOptions) {
    this.client = createNodeClient({
      baseUrl: opts.baseUrl,
      apiKey: opts.apiKey,
      nodeOptions: opts.trustedCertPem ? { ca: [...rootCertificates, opts.trustedCertPem] } : undefined,
    });
  }

  /** Receives turns until the signal aborts, then lets running turns finish (briefly). */
  run(signal: AbortSignal): Promise<void> {
    const { log, agentId, tokenDelayMs } = this.opts;
    log.info({ agentId, url: this.opts.baseUrl }, "reference agent receiving turns");
    return this.client.runAgent({
      agentId,
      maxInFlight: this.opts.maxInFlight,
      signal,
      coalesceMs,
      drainTimeoutMs: 1_000,
      onReconnect: ({ failures, reason }) => log.warn({ err: reason, failures }, "reference agent lost its feed; reconnecting"),
      onTurnError: (err, a) => log.warn({ err: String(err), turnId: a.turn?.turnId }, "turn failed; asking for a retry"),
      handler: async ({ input, signal: turnSignal, writer }) => {
        for (const token of replyTokens(input)) {
          writer.delta(token);
          if (tokenDelayMs > 0) await sleep(tokenDelayMs, turnSignal);
        }
      },
    });
  }
}
