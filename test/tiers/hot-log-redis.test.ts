import test from "ava";
import { RedisHotLog } from "../../server/tiers/hot/redis/redis-hot-log.js";
import { testRedis } from "../support/redis.js";
import { hotLogContract } from "./hot-log.contract.js";

let cleanup: (() => Promise<void>) | undefined;
test.after.always(async () => cleanup?.());

hotLogContract(test, "redis", async () => {
  const redis = await testRedis();
  const hot = await RedisHotLog.open({
    client: redis.client,
    prefix: redis.prefix,
    partitions: 4,
    idempotencyTtlSeconds: 60,
    followLive: true,
  });
  const close = hot.close.bind(hot);
  hot.close = async () => {
    await close();
    await redis.cleanup();
  };
  return hot;
});
