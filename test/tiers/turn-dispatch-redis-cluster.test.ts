// The turn-dispatch contract on a real local Redis Cluster: dispatch scripts
// in the thread's slot, notices over sharded pub/sub (a channel per partition).
import test from "ava";
import { RedisHotLog } from "../../server/tiers/hot/redis/redis-hot-log.js";
import { RedisTurnDispatch } from "../../server/tiers/hot/redis/redis-turn-dispatch.js";
import { connectCluster, startRedisCluster } from "../support/redis-cluster.js";
import { turnDispatchContract } from "./turn-dispatch.contract.js";

turnDispatchContract(test, "redis cluster", async (policy) => {
  const cluster = await startRedisCluster();
  const redis = await connectCluster(cluster);
  const hot = await RedisHotLog.open({ redis, prefix: "ettest", partitions: 16, idempotencyTtlSeconds: 60, followLive: false });
  const dispatch = await RedisTurnDispatch.open(redis, hot, policy, true);
  return {
    hot,
    dispatch,
    async close() {
      await dispatch.close();
      await hot.close();
      await redis.close();
      await cluster.stop();
    },
  };
});
