// The Redis the hot tier runs on: one node or a Cluster. Commands are the
// same on both (a Cluster routes each by its first key); what differs is
// behind the few methods here: which keys one command may name together,
// where blocking reads get their connections, sharded pub/sub, WAIT.
import { createClient, createCluster, type RedisClientType, type RedisClusterType } from "redis";

/** The commands the hot tier sends; a single-node client and a cluster client both have them. */
export type RedisCommands = Pick<
  RedisClientType,
  | "eval"
  | "evalSha"
  | "hGet"
  | "hGetAll"
  | "hmGet"
  | "hSet"
  | "hDel"
  | "set"
  | "xRange"
  | "xRevRange"
  | "xRead"
  | "xReadGroup"
  | "xGroupCreate"
  | "xAutoClaimJustId"
  | "xAck"
  | "xPending"
  | "xInfoGroups"
  | "xTrim"
  | "zAdd"
  | "zCard"
  | "zCount"
  | "zRangeByScore"
  | "zRangeByScoreWithScores"
  | "zRemRangeByScore"
  | "zRem"
>;

/** Partitions one multi-key command (XREAD, XREADGROUP) may name together; `id` names the group while it lives. */
export interface PartitionGroup {
  id: string;
  partitions: number[];
}

/** A connection of its own, for one blocking read at a time. */
export interface BlockingRedis {
  readonly commands: RedisCommands;
  close(): void;
}

export interface HotRedis {
  /** Commands on shared connections; never a blocking one. */
  readonly commands: RedisCommands;
  /** For logs: where the hot tier is ("redis (<url>" or "redis cluster (<seeds>"; the caller closes the parenthesis). */
  readonly describe: string;
  /** One group on one node; one per partition on a Cluster, where a multi-key command must name keys of one slot. */
  partitionGroups(partitions: number[]): PartitionGroup[];
  blockingConnection(): Promise<BlockingRedis>;
  /** Sharded pub/sub (SSUBSCRIBE) on connections of its own; resolves to an unsubscribe. */
  shardedSubscribe(channels: string[], listener: (message: string) => void): Promise<() => Promise<void>>;
  /** WAIT on the connection that wrote `key`: how many replicas have every write sent on it so far. */
  waitReplicas(key: string, replicas: number, timeoutMs: number): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

type OnError = (err: unknown) => void;

/** One Redis node. `client` is connected; it is closed with this. */
export class SingleNodeRedis implements HotRedis {
  readonly commands: RedisCommands;
  readonly describe: string;

  constructor(private readonly client: RedisClientType, describe = "redis", private readonly onError: OnError = () => {}) {
    this.commands = client;
    this.describe = describe;
  }

  static async open(url: string, describe: string, onError: OnError): Promise<SingleNodeRedis> {
    // No offline queue: while Redis is down, calls fail fast with UNAVAILABLE instead of hanging.
    // No command timeout: node-redis's (5 s by default) only bounds a command's wait to be written
    // (it is dropped once the command is on the socket), and without an offline queue nothing waits;
    // yet it costs every command an AbortSignal.timeout (a 5 s timer and a finalization entry),
    // about as much CPU as the rest of the command's client side.
    const client = createClient({ url, disableOfflineQueue: true, commandOptions: { timeout: 0 } }) as RedisClientType;
    client.on("error", onError);
    await client.connect();
    return new SingleNodeRedis(client, describe, onError);
  }

  partitionGroups(partitions: number[]): PartitionGroup[] {
    return [{ id: "all", partitions }];
  }

  async blockingConnection(): Promise<BlockingRedis> {
    const connection = this.client.duplicate() as RedisClientType;
    connection.on("error", this.onError);
    await connection.connect();
    return { commands: connection, close: () => connection.destroy() };
  }

  async shardedSubscribe(channels: string[], listener: (message: string) => void): Promise<() => Promise<void>> {
    const subscriber = this.client.duplicate() as RedisClientType;
    subscriber.on("error", this.onError);
    await subscriber.connect();
    await subscriber.sSubscribe(channels, (message) => listener(message));
    return async () => subscriber.destroy();
  }

  async waitReplicas(_key: string, replicas: number, timeoutMs: number): Promise<number> {
    return Number(await this.client.sendCommand(["WAIT", String(replicas), String(timeoutMs)]));
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/** A Redis Cluster; node-redis follows MOVED/ASK and refreshes the slot map when a node is lost. */
export class ClusterRedis implements HotRedis {
  readonly commands: RedisCommands;
  readonly describe: string;

  constructor(private readonly cluster: RedisClusterType, describe = "redis cluster", private readonly onError: OnError = () => {}) {
    this.commands = cluster;
    this.describe = describe;
  }

  static async open(nodes: { host: string; port: number }[], onError: OnError): Promise<ClusterRedis> {
    const cluster = createCluster({
      rootNodes: nodes.map((socket) => ({ socket })),
      defaults: { disableOfflineQueue: true },
      // A lost master is replaced by its replica within the cluster's node timeout: ask for
      // the new slot map a second after a node stops answering, and every second after.
      topologyRefreshOnReconnectionAttemptStrategy: 1_000,
    }) as RedisClusterType;
    cluster.on("error", onError);
    await cluster.connect();
    return new ClusterRedis(cluster, `redis cluster (${nodes.map((n) => `${n.host}:${n.port}`).join(",")}`, onError);
  }

  partitionGroups(partitions: number[]): PartitionGroup[] {
    return partitions.map((p) => ({ id: String(p), partitions: [p] }));
  }

  async blockingConnection(): Promise<BlockingRedis> {
    // A cluster client of its own that connects only to the nodes its commands go to.
    const connection = this.cluster.duplicate({ minimizeConnections: true }) as RedisClusterType;
    connection.on("error", this.onError);
    await connection.connect();
    return { commands: connection, close: () => connection.destroy() };
  }

  async shardedSubscribe(channels: string[], listener: (message: string) => void): Promise<() => Promise<void>> {
    // Channels of different slots live on different masters: one SSUBSCRIBE each (the
    // cluster client keeps a pub/sub connection per master and follows moved slots).
    const onMessage = (message: string) => listener(message);
    for (const channel of channels) await this.cluster.sSubscribe(channel, onMessage);
    return async () => {
      for (const channel of channels) await this.cluster.sUnsubscribe(channel, onMessage).catch(() => {});
    };
  }

  async waitReplicas(key: string, replicas: number, timeoutMs: number): Promise<number> {
    // The key's master's shared connection is the one the write went out on.
    const node = await this.cluster.getNodeClientForKey(key);
    return Number(await node.sendCommand(["WAIT", String(replicas), String(timeoutMs)]));
  }

  async ping(): Promise<void> {
    // Every master answers, or the hot tier is not ready.
    await Promise.all(this.cluster.masters.map(async (master) => (await this.cluster.nodeClient(master)).ping()));
  }

  async close(): Promise<void> {
    this.cluster.destroy();
  }
}
