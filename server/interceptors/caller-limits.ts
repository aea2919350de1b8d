// Per-key limits: a request rate (with a burst allowance) and a cap on open
// streams (tails and agent feeds). Streams opened without a key (health
// watches, reflection, every stream when auth is off) share one cap of their
// own. Counted in this server process: behind a load balancer a key gets these
// limits on each server it reaches.
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
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

const burstWindowSeconds = 10;

export class CallerLimits {
  private readonly rate: BurstyRateLimiter | undefined;
  private readonly openStreams = new Map<string, number>();

  constructor(private readonly settings: LimitSettings) {
    if (settings.requestsPerSecond > 0) {
      this.rate = new BurstyRateLimiter(
        new RateLimiterMemory({ keyPrefix: "rate", points: settings.requestsPerSecond, duration: 1 }),
        new RateLimiterMemory({ keyPrefix: "burst", points: Math.max(1, settings.burst), duration: burstWindowSeconds }),
      );
    }
  }

  /** Spends one request of the caller's rate; RESOURCE_EXHAUSTED when none is left. */
  async spendRequest(caller: Caller): Promise<void> {
    if (!this.rate) return;
    try {
      await this.rate.consume(caller.keyName);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      const retryMs = Math.max(1, Math.ceil(err.msBeforeNext));
      throw new ConnectError(
        `request rate limit of ${this.settings.requestsPerSecond}/s (burst ${this.settings.burst}) for this API key reached; retry in ${retryMs} ms`,
        Code.ResourceExhausted,
      );
    }
  }

  /**
   * Takes one of the caller's stream slots (the anonymous caller's are shared
   * by every call without a key); the returned function gives it back (once).
   */
  openStream(caller: Caller): () => void {
    const anonymous = caller.keyName === anonymousCaller.keyName;
    const limit = anonymous ? this.settings.maxAnonymousStreams : this.settings.maxStreamsPerKey;
    const open = this.openStreams.get(caller.keyName) ?? 0;
    if (open >= limit) {
      throw new ConnectError(
        anonymous
          ? `this server already has ${open} open streams without an API key (health watches, reflection, and every stream while auth is off); the limit is ${limit}`
          : `this API key already has ${open} open streams (tails and agent feeds); the limit is ${limit}`,
        Code.ResourceExhausted,
      );
    }
    this.openStreams.set(caller.keyName, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // A key's count stays at zero rather than going: a metric series that vanishes reads as unknown, not idle.
      this.openStreams.set(caller.keyName, Math.max(0, (this.openStreams.get(caller.keyName) ?? 1) - 1));
    };
  }

  /** Open streams per key name (`anonymous` for those without a key), for the metrics. */
  openStreamsByKey(): ReadonlyMap<string, number> {
    return this.openStreams;
  }
}
