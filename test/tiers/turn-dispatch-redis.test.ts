import test from "ava";
import { SingleNodeRedis } from "../../server/tiers/hot/redis/hot-redis.js";
import { RedisHotLog } from "../../server/tiers/hot/redis/redis-hot-log.js";
import { RedisTurnDispatch } from "../../server/tiers/hot/redis/redis-turn-dispatch.js";
import { testRedis } from "../support/redis.js";
import { turnDispatchContract } from "./turn-dispatch.contract.js";

turnDispatchContract(test, "redis", async (policy) => {
  const redis = await testRedis();
  const single = new SingleNodeRedis(redis.client);
  const hot = await RedisHotLog.open({ redis: single, prefix: redis.prefix, partitions: 4, idempotencyTtlSeconds: 60, followLive: false });
  const dispatch = await RedisTurnDispatch.open(single, hot, policy, true);
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
