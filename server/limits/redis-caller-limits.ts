// Per-key limits counted in Redis, so a key gets its limits once across every
// server of a deployment. Requests: rate-limiter-flexible's Redis limiters (one
// counter a window). Open streams: a sorted set per key of stream ids scored by
// expiry, which the holding server refreshes; a crashed server's slots expire
// instead of leaking (open_stream.lua prunes, counts and adds at once).
// Streams without a key stay counted per server: that cap guards one server's
// sockets, and health watches from a load balancer reach every server.
//
// When Redis is slow (no answer within redisTimeoutMs) or down, the limits
// fail OPEN to this server's own counts (MemoryCallerLimits): a key then gets
// its limits on each server, as before counting moved to Redis. Failing closed
// would refuse every call, reads that Postgres and S3 could still serve
// included, because the limiter's store had a hiccup; the limits guard against
// a noisy key, they do not guard data.
//
// Every key carries the caller's key name as its Cluster hash tag: a key's
// rate, burst and stream counters share one slot.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import { BurstyRateLimiter, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { anonymousCaller, type Caller } from "../auth.js";
import type { RedisCommands } from "../tiers/hot/redis/hot-redis.js";
import { ScriptRunner } from "../tiers/hot/redis/script-runner.js";
import { burstWindowSeconds, type CallerLimits, type LimitSettings, rateLimited, streamLimitOf, tooManyStreams } from "./caller-limits.js";
import { MemoryCallerLimits } from "./memory-caller-limits.js";

const script = (name: string) => readFileSync(new URL(`../tiers/hot/redis/scripts/${name}`, import.meta.url), "utf8");

export interface RedisCallerLimitsOptions {
  /** One node's client or a Cluster's (every limiter key names one slot); rate-limiter-flexible drives either through node-redis's call shapes. */
  client: RedisCommands;
  /** EVENTIDE_REDIS_PREFIX. */
  prefix: string;
  settings: LimitSettings;
  log: Logger;
  /** A Redis answer slower than this counts as no answer: the call is counted in memory. */
  redisTimeoutMs?: number;
  /** A held stream slot expires this long after its server last refreshed it (refreshed every third of it). */
  slotTtlMs?: number;
}

/** Generous: on a loaded machine a Redis round trip can take tens of ms; falling back splits the count. */
const defaultRedisTimeoutMs = 1_000;
const defaultSlotTtlMs = 30_000;
/** At most one "counting in memory" warning in this long. */
const warnEveryMs = 10_000;

export class RedisCallerLimits implements CallerLimits {
  private readonly rate: BurstyRateLimiter | undefined;
  private readonly fallback: MemoryCallerLimits;
  private readonly openScript: ScriptRunner;
  private readonly refreshScript: ScriptRunner;
  private readonly redisTimeoutMs: number;
  private readonly slotTtlMs: number;
  /** Stream set key → ids of the slots this server holds in it, refreshed until released. */
  private readonly held = new Map<string, Set<string>>();
  /** Key name → streams open on this server (in Redis or, while it did not answer, in memory). */
  private readonly openHere = new Map<string, number>();
  /** Makes this server's stream ids unique in the deployment. */
  private readonly holderId = randomUUID();
  private streamCount = 0;
  private readonly refresher: NodeJS.Timeout;
  private lastWarnAt = 0;

  constructor(private readonly options: RedisCallerLimitsOptions) {
    const { client, prefix, settings } = options;
    this.fallback = new MemoryCallerLimits(settings);
    this.redisTimeoutMs = options.redisTimeoutMs ?? defaultRedisTimeoutMs;
    this.slotTtlMs = options.slotTtlMs ?? defaultSlotTtlMs;
    if (settings.requestsPerSecond > 0) {
      // useRedisPackage: node-redis's call shapes (eval with { keys, arguments }, pTTL).
      this.rate = new BurstyRateLimiter(
        new RateLimiterRedis({ storeClient: client, useRedisPackage: true, keyPrefix: `${prefix}:limits:rate`, points: settings.requestsPerSecond, duration: 1 }),
        new RateLimiterRedis({
          storeClient: client,
          useRedisPackage: true,
          keyPrefix: `${prefix}:limits:burst`,
          points: Math.max(1, settings.burst),
          duration: burstWindowSeconds,
        }),
      );
    }
    this.openScript = new ScriptRunner(client, script("open_stream.lua"));
    this.refreshScript = new ScriptRunner(client, script("refresh_streams.lua"));
    this.refresher = setInterval(() => void this.refreshHeld(), Math.max(10, Math.floor(this.slotTtlMs / 3))).unref();
  }

  async spendRequest(caller: Caller): Promise<void> {
    if (!this.rate) return;
    try {
      await this.answered(this.rate.consume(hashTagged(caller)));
    } catch (err) {
      if (err instanceof RateLimiterRes) throw rateLimited(this.options.settings, err.msBeforeNext);
      this.countingInMemory(err);
      return this.fallback.spendRequest(caller);
    }
  }

  async openStream(caller: Caller): Promise<() => void> {
    if (caller.keyName === anonymousCaller.keyName) return this.countedHere(caller, this.fallback.openStreamNow(caller));
    const limit = streamLimitOf(this.options.settings, caller);
    const key = this.streamsKey(caller);
    const id = `${this.holderId}:${++this.streamCount}`;
    let reply: [number, number];
    try {
      reply = (await this.answered(this.openScript.run([key], [String(this.slotTtlMs), id, String(limit)]))) as [number, number];
    } catch (err) {
      // A slot the script took after the timeout is never refreshed: it expires within slotTtlMs.
      this.countingInMemory(err);
      return this.countedHere(caller, this.fallback.openStreamNow(caller));
    }
    const [taken, open] = reply.map(Number);
    if (!taken) throw tooManyStreams(caller, open, limit);
    let ids = this.held.get(key);
    if (!ids) this.held.set(key, (ids = new Set()));
    ids.add(id);
    return this.countedHere(caller, () => {
      ids.delete(id);
      if (ids.size === 0 && this.held.get(key) === ids) this.held.delete(key);
      // Not given back now (Redis down): it expires within slotTtlMs, as nobody refreshes it.
      this.options.client.zRem(key, id).catch((err) => this.options.log.debug({ err: String(err) }, "stream slot not released in Redis; it expires"));
    });
  }

  openStreamsByKey(): ReadonlyMap<string, number> {
    return this.openHere;
  }

  close(): void {
    clearInterval(this.refresher);
  }

  private streamsKey(caller: Caller): string {
    return `${this.options.prefix}:limits:streams:${hashTagged(caller)}`;
  }

  /** Counts a slot in this server's metrics; the returned release gives it back once. */
  private countedHere(caller: Caller, release: () => void): () => void {
    this.openHere.set(caller.keyName, (this.openHere.get(caller.keyName) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      // Stays at zero rather than going: a metric series that vanishes reads as unknown, not idle.
      this.openHere.set(caller.keyName, Math.max(0, (this.openHere.get(caller.keyName) ?? 1) - 1));
    };
  }

  private async refreshHeld(): Promise<void> {
    for (const [key, ids] of this.held) {
      if (ids.size === 0) continue;
      try {
        await this.refreshScript.run([key], [String(this.slotTtlMs), ...ids]);
      } catch (err) {
        this.options.log.warn({ err: String(err) }, "stream slots not refreshed in Redis; they expire unless a later refresh lands");
      }
    }
  }

  /** The promise, or a rejection once the Redis answer is later than redisTimeoutMs. */
  private answered<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer the limiter within ${this.redisTimeoutMs} ms`)), this.redisTimeoutMs);
    });
    work.catch(() => {}); // a late rejection after the timeout is not unhandled
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  }

  private countingInMemory(err: unknown): void {
    const now = Date.now();
    if (now - this.lastWarnAt < warnEveryMs) return;
    this.lastWarnAt = now;
    this.options.log.warn({ err: String(err) }, "Redis did not answer the limiter: limits are counted per server until it does");
  }
}

/** The key name as a Cluster hash tag (names are [A-Za-z0-9_.-]/role#n or anonymous: never braces). */
function hashTagged(caller: Caller): string {
  return `{${caller.keyName}}`;
}
