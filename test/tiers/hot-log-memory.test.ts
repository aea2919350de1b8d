import test from "ava";
import { MemoryHotLog } from "../../server/tiers/hot/memory/memory-hot-log.js";
import { hotLogContract } from "./hot-log.contract.js";

hotLogContract(test, "memory", async () => new MemoryHotLog({ idempotencyTtlSeconds: 60 }));
