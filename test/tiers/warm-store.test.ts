import test from "ava";
import { testWarm, warmKinds } from "../support/postgres.js";
import { warmStoreContract } from "./warm-store.contract.js";

for (const kind of warmKinds) warmStoreContract(test, kind, () => testWarm(kind));
