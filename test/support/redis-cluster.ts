// A real local Redis Cluster for a test file: six redis-server processes of
// Debian's redis-server (3 masters, 3 replicas) on free ports of their own,
// joined with `redis-cli --cluster create`, data under a temp dir, stopped
// at the end. No Docker, nothing shared with the machine's Redis.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, mkdir, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import { ClusterRedis } from "../../server/tiers/hot/redis/hot-redis.js";

const run = promisify(execFile);
const host = "127.0.0.1";
/** Short, so a killed master's replica takes over in a few seconds. */
const nodeTimeoutMs = 2_000;

export interface ClusterNode {
  port: number;
  process: ChildProcess;
}

export interface Shard {
  master: number;
  replica?: number;
  /** Slot ranges, inclusive. */
  slots: [number, number][];
}

export interface RedisClusterUnderTest {
  nodes: ClusterNode[];
  /** REDIS_CLUSTER_NODES for a server on this cluster. */
  seeds: string;
  /** Each master and its replica, as the cluster sees them now. */
  shards(): Promise<Shard[]>;
  /** The shard that holds `key`'s slot now. */
  shardOf(key: string): Promise<Shard>;
  /** Keys matching `pattern` on every master (a SCAN of one node sees only its own slots). */
  scanKeys(pattern: string): Promise<string[]>;
  /** Runs redis-cli against one node. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** SIGKILLs a node: no shutdown, no goodbye to the cluster. */
  kill(port: number): Promise<void>;
  /** Starts a stopped node again on its port and data dir: it rejoins the cluster (a lost master comes back as a replica). */
  restart(port: number): Promise<void>;
  /** Until every live node reports cluster_state:ok and every master has a replica in sync. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Live nodes are killed if the test process exits without stop() (a crash, a timeout). */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

export async function startRedisCluster(): Promise<RedisClusterUnderTest> {
  const dir = await mkdtemp(join(tmpdir(), "eventide-redis-cluster-"));
  const nodes: ClusterNode[] = [];
  const cli = async (port: number, ...args: string[]) => (await run("redis-cli", ["-h", host, "-p", String(port), ...args])).stdout;
  const cluster: RedisClusterUnderTest = {
    nodes,
    seeds: "",
    cli,
    async shards() {
      const lines = (await cli(aliveNode(), "cluster", "nodes")).trim().split("\n");
      const parsed = lines.map((line) => {
        const [id, address, flags, masterId, , , , , ...slots] = line.split(" ");
        const ranges = slots.filter((r) => /^\d/.test(r)).map((r): [number, number] => {
          const [from, to] = r.split("-").map(Number);
          return [from, to ?? from];
        });
        return { id, port: Number(address.split("@")[0].split(":")[1]), flags: flags.split(","), masterId, ranges };
      });
      return parsed
        .filter((n) => n.flags.includes("master") && !n.flags.includes("fail") && n.ranges.length > 0)
        .map((m) => ({ master: m.port, replica: parsed.find((r) => r.masterId === m.id && !r.flags.includes("fail"))?.port, slots: m.ranges }));
    },
    async shardOf(key) {
      const slot = Number((await cli(aliveNode(), "cluster", "keyslot", key)).trim());
      const shard = (await cluster.shards()).find((s) => s.slots.some(([from, to]) => slot >= from && slot <= to));
      if (!shard) throw new Error(`no master holds slot ${slot}`);
      return shard;
    },
    async kill(port) {
      const node = nodes.find((n) => n.port === port)!;
      const exited = new Promise((resolve) => node.process.once("exit", resolve));
      node.process.kill("SIGKILL");
      await exited;
      live.delete(node.process);
    },
    async scanKeys(pattern) {
      const perMaster = await Promise.all((await cluster.shards()).map(({ master }) => cli(master, "--scan", "--pattern", pattern)));
      return perMaster.flatMap((out) => out.split("\n").filter(Boolean)).sort();
    },
    async restart(port) {
      const node = nodes.find((n) => n.port === port)!;
      node.process = spawnNode(dir, port);
      await waitFor(async () => (await cli(port, "ping")).trim() === "PONG", `redis-server on ${port}`);
    },
    async waitHealthy(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const problem = await unhealthy().catch((err) => String(err));
        if (!problem) return;
        if (Date.now() > deadline) throw new Error(`the Redis Cluster is not healthy: ${problem}`);
        await delay(100);
      }
    },
    async stop() {
      await Promise.all(
        nodes.map(async ({ port, process: child }) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise((resolve) => child.once("exit", resolve));
          await cli(port, "shutdown", "nosave").catch(() => child.kill("SIGKILL"));
          await Promise.race([exited, delay(5_000).then(() => child.kill("SIGKILL"))]);
          live.delete(child);
        }),
      );
      await rm(dir, { recursive: true, force: true });
    },
  };

  function aliveNode(): number {
    return nodes.find((n) => n.process.exitCode === null && n.process.signalCode === null)!.port;
  }

  async function unhealthy(): Promise<string | undefined> {
    const alive = nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null);
    for (const { port } of alive) {
      if (!(await cli(port, "cluster", "info")).includes("cluster_state:ok")) return `node ${port} is not ok`;
    }
    const shards = await cluster.shards();
    if (shards.length !== 3) return `${shards.length} masters`;
    for (const { master, replica } of shards) {
      if (!replica) return `master ${master} has no replica`;
      if (!(await cli(replica, "info", "replication")).includes("master_link_status:up")) return `replica ${replica} is not in sync`;
    }
    return undefined;
  }

  try {
    for (const port of await freePorts(6)) {
      await mkdir(join(dir, String(port)));
      nodes.push({ port, process: spawnNode(dir, port) });
    }
    for (const { port } of nodes) await waitFor(async () => (await cli(port, "ping")).trim() === "PONG", `redis-server on ${port}`);
    await run("redis-cli", ["--cluster", "create", ...nodes.map((n) => `${host}:${n.port}`), "--cluster-replicas", "1", "--cluster-yes"]);
    await cluster.waitHealthy();
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  cluster.seeds = nodes.map((n) => `${host}:${n.port}`).join(",");
  return cluster;
}

function spawnNode(dir: string, port: number): ChildProcess {
  const nodeDir = join(dir, String(port));
  const child = spawn(
    "redis-server",
    [
      "--port", String(port), "--bind", host, "--cluster-enabled", "yes", "--cluster-config-file", join(nodeDir, "nodes.conf"),
      "--cluster-node-timeout", String(nodeTimeoutMs), "--cluster-replica-validity-factor", "0", "--dir", nodeDir,
      "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0", "--daemonize", "no", "--logfile", join(nodeDir, "redis.log"),
    ],
    { stdio: "ignore" },
  );
  live.add(child);
  return child;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up`);
    await delay(50);
  }
}

/** Ports free now whose cluster bus port (port + 10000) is free too. */
async function freePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  while (ports.length < count) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (ports.some((p) => Math.abs(p - port) < 2 || Math.abs(p + 10_000 - port) < 2 || Math.abs(p - 10_000 - port) < 2)) continue;
    if ((await isFree(port)) && (await isFree(port + 10_000))) ports.push(port);
  }
  return ports;
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** The hot tier's connection to the cluster, as a server opens it. */
export function connectCluster(cluster: RedisClusterUnderTest): Promise<ClusterRedis> {
  return ClusterRedis.open(
    cluster.nodes.map((n) => ({ host, port: n.port })),
    () => {},
  );
}
