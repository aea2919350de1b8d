// The persist feed on a Redis Cluster: a lane's XREADGROUPs go one per
// partition (one slot each), its blocking reads on a connection per partition.
import test from "ava";
import { createCluster, type RedisClusterType } from "redis";
import { connectCluster, type RedisClusterUnderTest, startRedisCluster } from "../support/redis-cluster.js";
import { persistFeedContract } from "./persist-feed-redis.contract.js";

let cluster: RedisClusterUnderTest;
test.before(async () => {
  cluster = await startRedisCluster();
});
test.after.always(async () => {
  await cluster?.stop();
});

persistFeedContract(test, "redis cluster", {
  env: () => ({ REDIS_URL: "", REDIS_CLUSTER_NODES: cluster.seeds }),
  async connect() {
    const redis = await connectCluster(cluster);
    const inspect = createCluster({ rootNodes: cluster.nodes.map((n) => ({ socket: { host: "127.0.0.1", port: n.port } })) }) as RedisClusterType;
    await inspect.connect();
    return {
      redis,
      inspect,
      async close() {
        inspect.destroy();
        await redis.close();
      },
    };
  },
});
