import test from "ava";
import { SingleNodeRedis } from "../../server/tiers/hot/redis/hot-redis.js";
import { connectRedis } from "../support/redis.js";
import { persistFeedContract } from "./persist-feed-redis.contract.js";

persistFeedContract(test, "redis", {
  env: () => ({}),
  async connect() {
    const client = await connectRedis();
    return { redis: new SingleNodeRedis(client), inspect: client, close: async () => client.destroy() };
  },
});
