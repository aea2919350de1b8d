import test from "ava";
import { MemoryHotLog } from "../../server/tiers/hot/memory/memory-hot-log.js";
import { MemoryTurnDispatch } from "../../server/tiers/hot/memory/memory-turn-dispatch.js";
import { turnDispatchContract } from "./turn-dispatch.contract.js";

turnDispatchContract(test, "memory", async (policy) => {
  const hot = new MemoryHotLog({ idempotencyTtlSeconds: 60 });
  const dispatch = new MemoryTurnDispatch(hot, policy);
  return { hot, dispatch, close: () => dispatch.close() };
});
