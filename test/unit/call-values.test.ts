// A call's context values behave as Connect's createContextValues(): a key's
// default until set, the last value set, the default again once deleted.
import test from "ava";
import { createContextKey } from "@connectrpc/connect";
import { CallValues } from "../../server/interceptors/call-values.js";

test("get gives the default until set, then the last value set; delete brings the default back; keys do not mix", (t) => {
  const caller = createContextKey("anonymous", { description: "caller" });
  const count = createContextKey(0, { description: "count" });
  const values = new CallValues();
  t.is(values.get(caller), "anonymous");
  t.is(values.set(caller, "key-a").set(count, 2), values);
  values.set(caller, "key-b");
  t.is(values.get(caller), "key-b");
  t.is(values.get(count), 2);
  values.delete(caller);
  t.is(values.get(caller), "anonymous");
  t.is(values.get(count), 2);
  // A value set to undefined is that value, not the default (as Connect's `key.id in this`).
  values.set(count, undefined as unknown as number);
  t.is(values.get(count) as number | undefined, undefined);
});
