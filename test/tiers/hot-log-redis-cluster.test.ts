// The hot-log contract on a real local Redis Cluster (3 masters, 3 replicas):
// every script touches one slot, reads cross partitions only one per command.
import test from "ava";
import { RedisHotLog } from "../../server/tiers/hot/redis/redis-hot-log.js";
import { connectCluster, startRedisCluster } from "../support/redis-cluster.js";
import { hotLogContract } from "./hot-log.contract.js";

hotLogContract(test, "redis cluster", async () => {
  const cluster = await startRedisCluster();
  const redis = await connectCluster(cluster);
  // 16 partitions: the hash tags land on all three masters.
  const hot = await RedisHotLog.open({ redis, prefix: "ettest", partitions: 16, idempotencyTtlSeconds: 60, followLive: true });
  const close = hot.close.bind(hot);
  hot.close = async () => {
    await close();
    await redis.close();
    await cluster.stop();
  };
  return hot;
});
