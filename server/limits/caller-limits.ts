// Per-key limits: a request rate (with a burst allowance) and a cap on open
// streams (tails and agent feeds). Streams opened without a key (health
// watches, reflection, every stream when auth is off) share one cap of their
// own. Two implementations: counted in this process (embedded tiers,
// memory-caller-limits.ts) or in Redis across every server (redis-caller-limits.ts);
// open-tiers.ts picks one with the hot tier.
import { Code, ConnectError } from "@connectrpc/connect";
import { anonymousCaller, type Caller } from "../auth.js";

export interface LimitSettings {
  /** Sustained requests a second per key; 0 = unlimited. */
  requestsPerSecond: number;
  /** Extra requests a key may spend above the rate, refilled every 10 s. */
  burst: number;
  maxStreamsPerKey: number;
  /** Open streams of every caller without a key, together. */
  maxAnonymousStreams: number;
}

/** The burst allowance refills over this window. */
export const burstWindowSeconds = 10;

export interface CallerLimits {
  /** Spends one request of the caller's rate; RESOURCE_EXHAUSTED when none is left. */
  spendRequest(caller: Caller): Promise<void>;
  /**
   * Takes one of the caller's stream slots (the anonymous caller's are shared
   * by every call without a key), RESOURCE_EXHAUSTED when none is free; the
   * returned function gives it back (once).
   */
  openStream(caller: Caller): Promise<() => void>;
  /** This process's open streams per key name (`anonymous` for those without a key), for the metrics. */
  openStreamsByKey(): ReadonlyMap<string, number>;
  close(): void;
}

export function streamLimitOf(settings: LimitSettings, caller: Caller): number {
  return caller.keyName === anonymousCaller.keyName ? settings.maxAnonymousStreams : settings.maxStreamsPerKey;
}

export function rateLimited(settings: LimitSettings, msBeforeNext: number): ConnectError {
  const retryMs = Math.max(1, Math.ceil(msBeforeNext));
  return new ConnectError(
    `request rate limit of ${settings.requestsPerSecond}/s (burst ${settings.burst}) for this API key reached; retry in ${retryMs} ms`,
    Code.ResourceExhausted,
  );
}

export function tooManyStreams(caller: Caller, open: number, limit: number): ConnectError {
  return new ConnectError(
    caller.keyName === anonymousCaller.keyName
      ? `this server already has ${open} open streams without an API key (health watches, reflection, and every stream while auth is off); the limit is ${limit}`
      : `this API key already has ${open} open streams (tails and agent feeds); the limit is ${limit}`,
    Code.ResourceExhausted,
  );
}
