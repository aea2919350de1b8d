// API keys from the environment: inline or from a file, each entry checked,
// errors that name the entry by position and never echo a key.
import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../server/config.js";

test("EVENTIDE_API_KEYS: key:tenant:role entries; none = auth off", (t) => {
  t.deepEqual(loadConfig({}).apiKeys, []);
  const config = loadConfig({ EVENTIDE_API_KEYS: "k1:acme:client, k2:acme:agent ,k3:*:admin" });
  t.deepEqual(config.apiKeys, [
    { key: "k1", tenantId: "acme", role: "client" },
    { key: "k2", tenantId: "acme", role: "agent" },
    { key: "k3", tenantId: "*", role: "admin" },
  ]);
  t.true(config.roles.includes("agent"), "an agent key lets the reference agent run");
});

test("EVENTIDE_API_KEYS_FILE: one entry a line, # comments and blank lines skipped", (t) => {
  const file = join(mkdtempSync(join(tmpdir(), "eventide-keys-")), "keys");
  writeFileSync(file, "# production keys\nsecret-one:acme:client\n\nsecret-two:*:agent\n");
  t.deepEqual(
    loadConfig({ EVENTIDE_API_KEYS_FILE: file }).apiKeys.map((k) => k.key),
    ["secret-one", "secret-two"],
  );
  t.throws(() => loadConfig({ EVENTIDE_API_KEYS_FILE: join(file, "missing") }), { instanceOf: ConfigError, message: /cannot be read/ });
  t.throws(() => loadConfig({ EVENTIDE_API_KEYS_FILE: file, EVENTIDE_API_KEYS: "a:b:client" }), { instanceOf: ConfigError, message: /not both/ });
});

test("bad entries are configuration errors that never show the key", (t) => {
  const bad: [string, RegExp][] = [
    ["topsecret:acme", /entry 1 must be key:tenant:role/],
    ["ok:acme:client,topsecret:acme:root", /entry 2: the role must be one of client, agent, admin/],
    ["topsecret:*:client", /entry 1: a client key acts for one tenant/],
    ["topsecret:ac/me:client", /entry 1: the tenant must be \* or 1-64 characters/],
    ["top secret:acme:client", /entry 1: the key must be 1-256 printable ASCII/],
    ["topsecret:acme:client,topsecret:globex:agent", /appears twice/],
  ];
  for (const [keys, message] of bad) {
    const err = t.throws(() => loadConfig({ EVENTIDE_API_KEYS: keys }), { instanceOf: ConfigError, message });
    t.false(err?.message.includes("topsecret"), `the key is not in: ${err?.message}`);
  }
});

test("the reference agent needs a key once keys are configured", (t) => {
  // roles "all" quietly leaves it out; naming it is an error; EVENTIDE_AGENT_API_KEY supplies one.
  t.false(loadConfig({ EVENTIDE_API_KEYS: "k1:acme:client" }).roles.includes("agent"));
  t.throws(() => loadConfig({ EVENTIDE_API_KEYS: "k1:acme:client", EVENTIDE_ROLES: "server,agent" }), { instanceOf: ConfigError, message: /reference agent role needs an API key/ });
  t.true(loadConfig({ EVENTIDE_API_KEYS: "k1:acme:client", EVENTIDE_AGENT_API_KEY: "k9" }).roles.includes("agent"));
});

test("limits, metrics port, TLS and shutdown settings", (t) => {
  const config = loadConfig({ EVENTIDE_KEY_RATE: "5", EVENTIDE_KEY_BURST: "1", EVENTIDE_KEY_MAX_STREAMS: "2", METRICS_PORT: "0", EVENTIDE_SHUTDOWN_TIMEOUT: "3s" });
  t.deepEqual(config.limits, { requestsPerSecond: 5, burst: 1, maxStreamsPerKey: 2, maxRequestBytes: 16 * 1024 * 1024, maxAnonymousStreams: 2_000 });
  t.is(config.metricsPort, 0);
  t.is(loadConfig({}).metricsPort, undefined);
  t.is(config.shutdownTimeoutMs, 3_000);
  t.throws(() => loadConfig({ TLS_CERT: "cert.pem" }), { instanceOf: ConfigError, message: /both TLS_CERT and TLS_KEY/ });
  t.throws(() => loadConfig({ EVENTIDE_KEY_RATE: "-1" }), { instanceOf: ConfigError, message: /EVENTIDE_KEY_RATE/ });
});

test("connection timeouts and caps: safe defaults, durations, and no way to turn one off", (t) => {
  t.deepEqual(loadConfig({}).connections, {
    handshakeTimeoutMs: 10_000,
    headersTimeoutMs: 30_000,
    idleTimeoutMs: 30_000,
    maxConnections: 10_000,
    maxStreamsPerConnection: 256,
  });
  const config = loadConfig({
    EVENTIDE_HANDSHAKE_TIMEOUT: "2s",
    EVENTIDE_HEADERS_TIMEOUT: "500ms",
    EVENTIDE_IDLE_TIMEOUT: "2m",
    EVENTIDE_MAX_CONNECTIONS: "50",
    EVENTIDE_MAX_STREAMS_PER_CONNECTION: "8",
    EVENTIDE_ANONYMOUS_MAX_STREAMS: "3",
  });
  t.deepEqual(config.connections, { handshakeTimeoutMs: 2_000, headersTimeoutMs: 500, idleTimeoutMs: 120_000, maxConnections: 50, maxStreamsPerConnection: 8 });
  t.is(config.limits.maxAnonymousStreams, 3);
  const bad: [Record<string, string>, RegExp][] = [
    [{ EVENTIDE_IDLE_TIMEOUT: "0" }, /EVENTIDE_IDLE_TIMEOUT must be from 1 ms/],
    [{ EVENTIDE_HEADERS_TIMEOUT: "10m" }, /EVENTIDE_HEADERS_TIMEOUT must be from 1 ms to 300000 ms/],
    [{ EVENTIDE_HANDSHAKE_TIMEOUT: "soon" }, /EVENTIDE_HANDSHAKE_TIMEOUT must be a duration/],
    [{ EVENTIDE_MAX_CONNECTIONS: "0" }, /EVENTIDE_MAX_CONNECTIONS must be an integer from 1/],
    [{ EVENTIDE_MAX_STREAMS_PER_CONNECTION: "0" }, /EVENTIDE_MAX_STREAMS_PER_CONNECTION/],
    [{ EVENTIDE_ANONYMOUS_MAX_STREAMS: "-1" }, /EVENTIDE_ANONYMOUS_MAX_STREAMS/],
  ];
  for (const [env, message] of bad) t.throws(() => loadConfig(env), { instanceOf: ConfigError, message });
});

test("REDIS_CLUSTER_NODES: host:port seeds instead of REDIS_URL; EVENTIDE_REDIS_WAIT_REPLICAS", (t) => {
  t.deepEqual(loadConfig({}).redisClusterNodes, []);
  const config = loadConfig({ REDIS_CLUSTER_NODES: "10.0.0.1:7000, redis-b:7001,[::1]:7002", EVENTIDE_REDIS_WAIT_REPLICAS: "1" });
  t.deepEqual(config.redisClusterNodes, [
    { host: "10.0.0.1", port: 7000 },
    { host: "redis-b", port: 7001 },
    { host: "::1", port: 7002 },
  ]);
  t.is(config.redisWaitReplicas, 1);
  t.is(config.redisWaitTimeoutMs, 1_000);
  t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: "10.0.0.1" }), { instanceOf: ConfigError, message: /host:port/ });
  t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: "a:0" }), { instanceOf: ConfigError, message: /host:port/ });
  t.throws(() => loadConfig({ REDIS_CLUSTER_NODES: "a:7000", REDIS_URL: "redis://x" }), { instanceOf: ConfigError, message: /not both/ });
});
