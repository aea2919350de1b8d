// The one place that reads the environment. Every setting is documented in README.md.
import { readFileSync } from "node:fs";

export interface Config {
  /** The port for gRPC, gRPC-Web, Connect and HTTP (PORT). */
  port: number;
  /** The address to listen on (HOST). */
  host: string;
  /** redis:// URL of the hot tier; empty = in-memory hot tier (REDIS_URL). */
  redisUrl: string;
  /** Seed nodes ("host:port") of a Redis Cluster that holds the hot tier, instead of REDIS_URL (REDIS_CLUSTER_NODES, comma-separated). */
  redisClusterNodes: { host: string; port: number }[];
  /**
   * Replicas that must confirm each append (Redis WAIT) before it is acknowledged; 0 = none, and an
   * append acknowledged just before its master fails may be lost with it (EVENTIDE_REDIS_WAIT_REPLICAS).
   */
  redisWaitReplicas: number;
  /** How long an append waits for those replicas before it fails with UNAVAILABLE (EVENTIDE_REDIS_WAIT_TIMEOUT). */
  redisWaitTimeoutMs: number;
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
  /**
   * AppendEvents and TailEvents over the binary protocols on HTTP/2 are served by the lean wire path
   * (server/wire/wire-path.ts) instead of Connect's generic pipeline; off = Connect serves every call (EVENTIDE_WIRE_PATH).
   */
  wirePath: boolean;
  /** pino log level (LOG_LEVEL). */
  logLevel: string;
  /** postgres:// URL of the warm tier; empty = embedded PGlite under dataDir (DATABASE_URL). */
  databaseUrl: string;
  /** Postgres schema of every table, so deployments or tests share a database (EVENTIDE_PG_SCHEMA). */
  pgSchema: string;
  /** Where embedded tiers keep their files (EVENTIDE_DATA_DIR). */
  dataDir: string;
  /** Events a thread's hot stream keeps below its persisted seq (EVENTIDE_HOT_WINDOW). */
  hotWindow: number;
  /** Events a persister batch (one transaction) holds at most (EVENTIDE_PERSIST_BATCH). */
  persistBatchEvents: number;
  /** How long a persister waits to fill a batch (EVENTIDE_PERSIST_WAIT_MS). */
  persistWaitMs: number;
  /** After a quiet spell, how long a persister lets the first appends wait for more before committing them (EVENTIDE_PERSIST_LINGER_MS). */
  persistLingerMs: number;
  /** A persister's lease on a partition; a dead persister's partitions move after this (EVENTIDE_PERSIST_LEASE_MS). */
  persistLeaseMs: number;
  /** Batches a persister commits at once, each over its own share of the partitions (EVENTIDE_PERSIST_LANES; 1 on the embedded tiers). */
  persistLanes: number;
  /** S3-compatible cold tier; with no S3_BUCKET, archives go to EVENTIDE_DATA_DIR/archive. */
  s3: {
    /** S3_ENDPOINT: empty = AWS. */
    endpoint: string;
    /** S3_BUCKET: empty = the local directory store. */
    bucket: string;
    /** S3_REGION. */
    region: string;
    /** S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY: empty = the SDK's default credential chain. */
    accessKeyId: string;
    secretAccessKey: string;
    /** S3_FORCE_PATH_STYLE: path-style URLs, for MinIO, SeaweedFS, Ceph RGW. */
    forcePathStyle: boolean;
  };
  /** Events older than this, and threads idle this long, are archived (EVENTIDE_ARCHIVE_AFTER, e.g. 7d). */
  archiveAfterMs: number;
  /** Events in one archive object at most (EVENTIDE_ARCHIVE_MAX_EVENTS). */
  archiveMaxEvents: number;
  /** How often the archiver looks for work (EVENTIDE_ARCHIVE_INTERVAL, e.g. 1m). */
  archiveIntervalMs: number;
  /** Compressed archive objects the readers keep in memory (EVENTIDE_ARCHIVE_CACHE_BYTES). */
  archiveCacheBytes: number;
  /**
   * An archiver's claim on a thread while it archives it (EVENTIDE_ARCHIVE_LEASE): a thread
   * whose archiver died waits this long for another (a second one committing the same range
   * changes nothing, so a short lease only risks repeated work).
   */
  archiveLeaseMs: number;
  /** Threads idle longer than this are erased from every tier; 0 = kept forever (EVENTIDE_RETENTION, e.g. 90d). */
  retentionMs: number;
  /** Turn dispatch: lease TTL (EVENTIDE_LEASE_TTL), attempts before dead-lettering (EVENTIDE_MAX_ATTEMPTS),
   * retry backoff base and cap (EVENTIDE_RETRY_BACKOFF, EVENTIDE_RETRY_BACKOFF_MAX), how often lapsed leases
   * are swept (EVENTIDE_LEASE_SWEEP). */
  dispatch: { leaseTtlMs: number; maxAttempts: number; backoffBaseMs: number; backoffMaxMs: number; sweepIntervalMs: number };
  /** The reference agent role: the server it connects to (EVENTIDE_AGENT_URL; default this process's server),
   * its id (EVENTIDE_AGENT_ID), turns at once (EVENTIDE_AGENT_CONCURRENCY), delay between tokens (EVENTIDE_AGENT_TOKEN_DELAY),
   * the API key it sends (EVENTIDE_AGENT_API_KEY; default the first agent key of every tenant, else of one tenant). */
  agent: { url: string; agentId: string; maxInFlight: number; tokenDelayMs: number; apiKey: string };
  /**
   * API keys (EVENTIDE_API_KEYS as comma-separated `key:tenant:role`, or EVENTIDE_API_KEYS_FILE with one
   * entry a line); none = auth off, every caller is the default tenant's admin.
   */
  apiKeys: ApiKeyEntry[];
  /** Per-key limits: requests a second and burst (EVENTIDE_KEY_RATE, EVENTIDE_KEY_BURST; 0 = no limit),
   * concurrent tails and agent feeds (EVENTIDE_KEY_MAX_STREAMS), request body bytes (EVENTIDE_MAX_REQUEST_BYTES);
   * open streams of callers without a key, all together (EVENTIDE_ANONYMOUS_MAX_STREAMS). */
  limits: { requestsPerSecond: number; burst: number; maxStreamsPerKey: number; maxRequestBytes: number; maxAnonymousStreams: number };
  /** What one connection may hold, and for how long (see ConnectionLimits in http-server.ts). */
  connections: {
    /** A new connection must show its protocol within this: its first bytes, or over TLS its handshake (EVENTIDE_HANDSHAKE_TIMEOUT). */
    handshakeTimeoutMs: number;
    /** An HTTP/1.1 request's headers must be complete within this of its start (EVENTIDE_HEADERS_TIMEOUT). */
    headersTimeoutMs: number;
    /** An HTTP/1.1 connection between requests, or an HTTP/2 session with no open stream, is closed after this (EVENTIDE_IDLE_TIMEOUT). */
    idleTimeoutMs: number;
    /** Connections open at once; more are closed as they arrive (EVENTIDE_MAX_CONNECTIONS). */
    maxConnections: number;
    /** Streams open at once on one HTTP/2 connection (EVENTIDE_MAX_STREAMS_PER_CONNECTION). */
    maxStreamsPerConnection: number;
  };
  /** Port of the Prometheus /metrics endpoint; undefined = not served, 0 = any free port (METRICS_PORT). */
  metricsPort: number | undefined;
  /** PEM files; both set = HTTPS/HTTP2 with ALPN instead of cleartext (TLS_CERT, TLS_KEY). */
  tls: { certFile: string; keyFile: string } | undefined;
  /** How long a SIGTERM'd process may take to stop before it exits anyway (EVENTIDE_SHUTDOWN_TIMEOUT). */
  shutdownTimeoutMs: number;
  /** How long the event loop must be nearly idle before V8 is asked to give back the heap a burst grew; 0 = never (EVENTIDE_IDLE_HEAP_TRIM). */
  idleHeapTrimMs: number;
  /** Where the built web console is served from (EVENTIDE_CONSOLE_DIR). */
  consoleDir: string;
  /** Which roles this process runs (EVENTIDE_ROLES or the first CLI argument): server, persister, archiver, dispatcher, agent. */
  roles: Role[];
}

export const callerRoles = ["client", "agent", "admin"] as const;
export type CallerRole = (typeof callerRoles)[number];

/** One API key: its secret, the tenant it acts for (`*` = every tenant) and its role. */
export interface ApiKeyEntry {
  key: string;
  tenantId: string;
  role: CallerRole;
}

export const allRoles = ["server", "persister", "archiver", "dispatcher", "agent"] as const;
export type Role = (typeof allRoles)[number];

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env, argv: string[] = []): Config {
  const config: Config = {
    port: integer(env, "PORT", 8080, 0, 65535),
    host: env.HOST || "0.0.0.0",
    redisUrl: env.REDIS_URL ?? "",
    redisClusterNodes: clusterNodes(env),
    redisWaitReplicas: integer(env, "EVENTIDE_REDIS_WAIT_REPLICAS", 0, 0, 16),
    redisWaitTimeoutMs: duration(env, "EVENTIDE_REDIS_WAIT_TIMEOUT", "1s", 1, 60_000),
    redisPrefix: prefix(env.EVENTIDE_REDIS_PREFIX ?? "et"),
    partitions: integer(env, "EVENTIDE_PARTITIONS", 16, 1, 16384),
    heartbeatMs: integer(env, "EVENTIDE_HEARTBEAT_MS", 15_000, 10, 3_600_000),
    tailBuffer: integer(env, "EVENTIDE_TAIL_BUFFER", 1_000, 1, 1_000_000),
    idempotencyTtlSeconds: integer(env, "EVENTIDE_IDEMPOTENCY_TTL_S", 86_400, 1, 30 * 86_400),
    corsOrigins: (env.EVENTIDE_CORS_ORIGINS ?? "")
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean),
    wirePath: onOff(env, "EVENTIDE_WIRE_PATH", true),
    logLevel: env.LOG_LEVEL || "info",
    databaseUrl: env.DATABASE_URL ?? "",
    pgSchema: identifier("EVENTIDE_PG_SCHEMA", env.EVENTIDE_PG_SCHEMA || "public"),
    dataDir: env.EVENTIDE_DATA_DIR || "./data",
    hotWindow: integer(env, "EVENTIDE_HOT_WINDOW", 1_000, 0, 10_000_000),
    persistBatchEvents: integer(env, "EVENTIDE_PERSIST_BATCH", 2_000, 1, 100_000),
    persistWaitMs: integer(env, "EVENTIDE_PERSIST_WAIT_MS", 50, 1, 60_000),
    persistLingerMs: integer(env, "EVENTIDE_PERSIST_LINGER_MS", 10, 0, 1_000),
    persistLeaseMs: integer(env, "EVENTIDE_PERSIST_LEASE_MS", 10_000, 200, 600_000),
    persistLanes: integer(env, "EVENTIDE_PERSIST_LANES", 2, 1, 16),
    s3: {
      endpoint: env.S3_ENDPOINT ?? "",
      bucket: env.S3_BUCKET ?? "",
      region: env.S3_REGION || "us-east-1",
      accessKeyId: env.S3_ACCESS_KEY_ID ?? "",
      secretAccessKey: env.S3_SECRET_ACCESS_KEY ?? "",
      forcePathStyle: boolean(env, "S3_FORCE_PATH_STYLE", true),
    },
    archiveAfterMs: duration(env, "EVENTIDE_ARCHIVE_AFTER", "7d"),
    archiveMaxEvents: integer(env, "EVENTIDE_ARCHIVE_MAX_EVENTS", 10_000, 1, 10_000_000),
    archiveIntervalMs: duration(env, "EVENTIDE_ARCHIVE_INTERVAL", "1m"),
    archiveCacheBytes: integer(env, "EVENTIDE_ARCHIVE_CACHE_BYTES", 64 * 1024 * 1024, 0, 2 ** 40),
    archiveLeaseMs: duration(env, "EVENTIDE_ARCHIVE_LEASE", "5m"),
    retentionMs: duration(env, "EVENTIDE_RETENTION", "0"),
    dispatch: {
      leaseTtlMs: duration(env, "EVENTIDE_LEASE_TTL", "30s"),
      maxAttempts: integer(env, "EVENTIDE_MAX_ATTEMPTS", 3, 1, 100),
      backoffBaseMs: duration(env, "EVENTIDE_RETRY_BACKOFF", "1s"),
      backoffMaxMs: duration(env, "EVENTIDE_RETRY_BACKOFF_MAX", "60s"),
      sweepIntervalMs: duration(env, "EVENTIDE_LEASE_SWEEP", "1s"),
    },
    agent: {
      url: env.EVENTIDE_AGENT_URL ?? "",
      agentId: env.EVENTIDE_AGENT_ID || "reference-agent",
      maxInFlight: integer(env, "EVENTIDE_AGENT_CONCURRENCY", 16, 1, 1000),
      tokenDelayMs: duration(env, "EVENTIDE_AGENT_TOKEN_DELAY", "20ms"),
      apiKey: env.EVENTIDE_AGENT_API_KEY ?? "",
    },
    apiKeys: apiKeys(env),
    limits: {
      requestsPerSecond: integer(env, "EVENTIDE_KEY_RATE", 1_000, 0, 10_000_000),
      burst: integer(env, "EVENTIDE_KEY_BURST", 2_000, 0, 10_000_000),
      maxStreamsPerKey: integer(env, "EVENTIDE_KEY_MAX_STREAMS", 2_000, 1, 10_000_000),
      maxRequestBytes: integer(env, "EVENTIDE_MAX_REQUEST_BYTES", 16 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      maxAnonymousStreams: integer(env, "EVENTIDE_ANONYMOUS_MAX_STREAMS", 2_000, 1, 10_000_000),
    },
    connections: {
      handshakeTimeoutMs: duration(env, "EVENTIDE_HANDSHAKE_TIMEOUT", "10s", 1, 3_600_000),
      // At most Node's HTTP/1 request timeout (5 minutes), which bounds the whole request.
      headersTimeoutMs: duration(env, "EVENTIDE_HEADERS_TIMEOUT", "30s", 1, 300_000),
      idleTimeoutMs: duration(env, "EVENTIDE_IDLE_TIMEOUT", "30s", 1, 86_400_000),
      maxConnections: integer(env, "EVENTIDE_MAX_CONNECTIONS", 10_000, 1, 10_000_000),
      maxStreamsPerConnection: integer(env, "EVENTIDE_MAX_STREAMS_PER_CONNECTION", 256, 1, 2 ** 31 - 1),
    },
    metricsPort: env.METRICS_PORT ? integer(env, "METRICS_PORT", 0, 0, 65535) : undefined,
    tls: tls(env),
    shutdownTimeoutMs: duration(env, "EVENTIDE_SHUTDOWN_TIMEOUT", "10s"),
    idleHeapTrimMs: duration(env, "EVENTIDE_IDLE_HEAP_TRIM", "30s", 0, 3_600_000),
    consoleDir: consoleDir(env),
    roles: roles(argv[0] || env.EVENTIDE_ROLES || "all"),
  };
  const agentHasNoKey = config.apiKeys.length > 0 && !config.agent.apiKey && !config.apiKeys.some((k) => k.role === "agent");
  const rolesNamed = argv[0] || env.EVENTIDE_ROLES || "all";
  // "all" quietly leaves out a reference agent that could not authenticate; naming it is a mistake to report.
  if (agentHasNoKey && rolesNamed === "all") config.roles = config.roles.filter((r) => r !== "agent");
  if (agentHasNoKey && config.roles.includes("agent")) {
    throw new ConfigError(
      "the reference agent role needs an API key once keys are configured: add a key:tenant:agent entry, set EVENTIDE_AGENT_API_KEY, or leave agent out of EVENTIDE_ROLES",
    );
  }
  return config;
}

/** REDIS_CLUSTER_NODES: "host:port" seeds; the hot tier is either one Redis or a Cluster. */
function clusterNodes(env: Env): { host: string; port: number }[] {
  const raw = (env.REDIS_CLUSTER_NODES ?? "").split(",").map((n) => n.trim()).filter(Boolean);
  if (raw.length > 0 && env.REDIS_URL) throw new ConfigError("set REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both");
  return raw.map((node) => {
    const m = /^(.+):(\d{1,5})$/.exec(node);
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) throw new ConfigError(`REDIS_CLUSTER_NODES must list host:port entries, got ${JSON.stringify(node)}`);
    return { host: m[1].replace(/^\[(.*)\]$/, "$1"), port };
  });
}

/** Where the built console lives (EVENTIDE_CONSOLE_DIR): the console build reads only this setting. */
export function consoleDir(env: Env = process.env): string {
  return env.EVENTIDE_CONSOLE_DIR || "dist/console";
}

/** Tenant ids become archive object keys and Redis values: a safe, short alphabet. */
export const tenantIdPattern = /^[A-Za-z0-9_.-]{1,64}$/;

function apiKeys(env: Env): ApiKeyEntry[] {
  const inline = env.EVENTIDE_API_KEYS ?? "";
  const file = env.EVENTIDE_API_KEYS_FILE ?? "";
  if (inline && file) throw new ConfigError("set EVENTIDE_API_KEYS or EVENTIDE_API_KEYS_FILE, not both");
  const entries = file ? readKeysFile(file).split("\n") : inline.split(",");
  const keys = entries
    .map((e) => e.trim())
    .filter((e) => e !== "" && !e.startsWith("#"))
    .map((entry, i) => apiKey(entry, i + 1));
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k.key)) throw new ConfigError("an API key appears twice in the key list");
    seen.add(k.key);
  }
  return keys;
}

function readKeysFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`EVENTIDE_API_KEYS_FILE ${JSON.stringify(path)} cannot be read: ${(err as Error).message}`);
  }
}

/** `key:tenant:role`; error messages name the entry by position, never by its secret. */
function apiKey(entry: string, position: number): ApiKeyEntry {
  const parts = entry.split(":");
  const where = `API key entry ${position}`;
  if (parts.length !== 3) throw new ConfigError(`${where} must be key:tenant:role`);
  const [key, tenantId, role] = parts;
  if (!/^[\x21-\x7e]{1,256}$/.test(key)) {
    throw new ConfigError(`${where}: the key must be 1-256 printable ASCII characters (no spaces, commas or colons)`);
  }
  if (tenantId === "*" && role === "client") throw new ConfigError(`${where}: a client key acts for one tenant, not *`);
  if (tenantId !== "*" && !tenantIdPattern.test(tenantId)) {
    throw new ConfigError(`${where}: the tenant must be * or 1-64 characters of [A-Za-z0-9_.-], got ${JSON.stringify(tenantId)}`);
  }
  if (!(callerRoles as readonly string[]).includes(role)) {
    throw new ConfigError(`${where}: the role must be one of ${callerRoles.join(", ")}, got ${JSON.stringify(role)}`);
  }
  return { key, tenantId, role: role as CallerRole };
}

function tls(env: Env): Config["tls"] {
  const certFile = env.TLS_CERT ?? "";
  const keyFile = env.TLS_KEY ?? "";
  if (!certFile && !keyFile) return undefined;
  if (!certFile || !keyFile) throw new ConfigError("TLS needs both TLS_CERT and TLS_KEY");
  return { certFile, keyFile };
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

const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "250ms", "30s", "15m", "12h", "7d", or plain milliseconds; within [minMs, maxMs] when given. */
function duration(env: Env, name: string, fallback: string, minMs = 0, maxMs = Infinity): number {
  const raw = env[name] || fallback;
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim());
  if (!match) throw new ConfigError(`${name} must be a duration like 30s, 15m, 12h or 7d, got ${JSON.stringify(raw)}`);
  const ms = Number(match[1]) * units[match[2] ?? "ms"];
  if (ms < minMs || ms > maxMs) throw new ConfigError(`${name} must be from ${minMs} ms to ${maxMs} ms, got ${JSON.stringify(raw)}`);
  return ms;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes)$/i.test(raw)) return true;
  if (/^(0|false|no)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

/** "on" or "off" (or what boolean() takes). */
function onOff(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === "on") return true;
  if (raw === "off") return false;
  return boolean(env, name, fallback);
}

function identifier(name: string, value: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(value)) throw new ConfigError(`${name} must be a lowercase SQL identifier, got ${JSON.stringify(value)}`);
  return value;
}

function roles(value: string): Role[] {
  if (value === "all") return [...allRoles];
  const wanted = value.split(",").map((r) => r.trim());
  for (const r of wanted) {
    if (!(allRoles as readonly string[]).includes(r)) throw new ConfigError(`unknown role ${JSON.stringify(r)}; roles are all, ${allRoles.join(", ")}`);
  }
  return wanted as Role[];
}
