// The one place that reads the environment. Every setting is documented in README.md.

export interface Config {
  /** The port for gRPC, gRPC-Web, Connect and HTTP (PORT). */
  port: number;
  /** The address to listen on (HOST). */
  host: string;
  /** redis:// URL of the hot tier; empty = in-memory hot tier (REDIS_URL). */
  redisUrl: string;
  /** Prefix of every Redis key, so several deployments or tests share one Redis (EVENTIDE_REDIS_PREFIX). */
  redisPrefix: string;
  /** Number of hot-tier partitions; fixed for the life of a deployment (EVENTIDE_PARTITIONS). */
  partitions: number;
  /** Idle interval after which a followed tail gets a heartbeat (EVENTIDE_HEARTBEAT_MS). */
  heartbeatMs: number;
  /** Live events buffered per tail before it falls back to reading storage (EVENTIDE_TAIL_BUFFER). */
  tailBuffer: number;
  /** How long SubmitTurn idempotency keys are remembered (EVENTIDE_IDEMPOTENCY_TTL_S). */
  idempotencyTtlSeconds: number;
  /** Origins allowed by CORS; `*` allows any (EVENTIDE_CORS_ORIGINS, comma-separated). */
  corsOrigins: string[];
  /** pino log level (LOG_LEVEL). */
  logLevel: string;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  return {
    port: integer(env, "PORT", 8080, 0, 65535),
    host: env.HOST || "0.0.0.0",
    redisUrl: env.REDIS_URL ?? "",
    redisPrefix: prefix(env.EVENTIDE_REDIS_PREFIX ?? "et"),
    partitions: integer(env, "EVENTIDE_PARTITIONS", 16, 1, 16384),
    heartbeatMs: integer(env, "EVENTIDE_HEARTBEAT_MS", 15_000, 10, 3_600_000),
    tailBuffer: integer(env, "EVENTIDE_TAIL_BUFFER", 1_000, 1, 1_000_000),
    idempotencyTtlSeconds: integer(env, "EVENTIDE_IDEMPOTENCY_TTL_S", 86_400, 1, 30 * 86_400),
    corsOrigins: (env.EVENTIDE_CORS_ORIGINS ?? "")
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean),
    logLevel: env.LOG_LEVEL || "info",
  };
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function prefix(value: string): string {
  // Braces would break the {partition} hash tag that keeps a thread's keys in one Cluster slot.
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(value)) {
    throw new ConfigError(`EVENTIDE_REDIS_PREFIX must be 1-64 characters of [A-Za-z0-9_.:-], got ${JSON.stringify(value)}`);
  }
  return value;
}
