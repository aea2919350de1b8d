// Per-key limits counted in this server process: the embedded tiers' limits,
// and the Redis limits' fallback while Redis does not answer. Behind a load
// balancer a key gets these limits on each server it reaches.
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { Caller } from "../auth.js";
import { burstWindowSeconds, type CallerLimits, type LimitSettings, rateLimited, streamLimitOf, tooManyStreams } from "./caller-limits.js";

export class MemoryCallerLimits implements CallerLimits {
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

  async spendRequest(caller: Caller): Promise<void> {
    if (!this.rate) return;
    try {
      await this.rate.consume(caller.keyName);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      throw rateLimited(this.settings, err.msBeforeNext);
    }
  }

  async openStream(caller: Caller): Promise<() => void> {
    return this.openStreamNow(caller);
  }

  /** openStream without a promise (the Redis limits fall back to it). */
  openStreamNow(caller: Caller): () => void {
    const limit = streamLimitOf(this.settings, caller);
    const open = this.openStreams.get(caller.keyName) ?? 0;
    if (open >= limit) throw tooManyStreams(caller, open, limit);
    this.openStreams.set(caller.keyName, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // A key's count stays at zero rather than going: a metric series that vanishes reads as unknown, not idle.
      this.openStreams.set(caller.keyName, Math.max(0, (this.openStreams.get(caller.keyName) ?? 1) - 1));
    };
  }

  openStreamsByKey(): ReadonlyMap<string, number> {
    return this.openStreams;
  }

  close(): void {}
}
