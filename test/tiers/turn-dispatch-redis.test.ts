import test from "ava";
import { RedisHotLog } from "../../server/tiers/hot/redis/redis-hot-log.js";
import { RedisTurnDispatch } from "../../server/tiers/hot/redis/redis-turn-dispatch.js";
import { testRedis } from "../support/redis.js";
import { turnDispatchContract } from "./turn-dispatch.contract.js";

turnDispatchContract(test, "redis", async (policy) => {
  const redis = await testRedis();
  const hot = await RedisHotLog.open({ client: redis.client, prefix: redis.prefix, partitions: 4, idempotencyTtlSeconds: 60, followLive: false });
  const dispatch = await RedisTurnDispatch.open(redis.client, hot, policy, true);
  return {
    hot,
    dispatch,
    async close() {
      await dispatch.close();
      await hot.close();
      await redis.cleanup();
    },
  };
});
