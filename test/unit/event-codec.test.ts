// The hot tier's entry body: decoding gives back the event, and the payload's
// own JSON text, which the persister writes to Postgres without serializing it again.
import test from "ava";
import type { JsonObject } from "@bufbuild/protobuf";
import type { NewEvent } from "../../server/domain/records.js";
import { decodeEntry, encodeBody } from "../../server/tiers/hot/redis/event-codec.js";
import { newEvent as testEvent } from "../support/events.js";

function newEvent(payload: JsonObject, over: Partial<NewEvent> = {}): NewEvent {
  return testEvent("message.delta", { eventId: "01JEVENT00000000000000000A", payload, metadata: { correlation_id: "c-1" }, ...over });
}

const payloads: [string, JsonObject][] = [
  ["empty", {}],
  ["a nested key named like the body's own fields", { a: 1, m: { sv: 2, tn: "x" }, l: "warn", p: [1, 2] }],
  ["strings holding the body's separators", { text: '","m":{"a":"b"},"sv":1,"tn":"t","l":"info"}', quote: '"\\' }],
  ["unicode and escapes", { delta: "h\u00e9llo \u{1F600} \n\t\u0000 \u2028" }],
  ["numbers and nulls", { n: 1.5e300, z: -0, none: null, list: [true, false, null] }],
];

for (const [name, payload] of payloads) {
  test(`decodeEntry gives back the event and its payload's JSON text: ${name}`, (t) => {
    const e = newEvent(payload, { metadata: { "k\"ey": "v,\"m\":", other: "" }, turnId: "01JTURN0000000000000000000" });
    const body = encodeBody(e, "acme");
    const stored = decodeEntry("01JTHREAD00000000000000000", "42-0", { e: body, c: "1700000000000" });
    t.like(stored, { eventId: e.eventId, threadId: "01JTHREAD00000000000000000", turnId: e.turnId, seq: 42, type: e.type, tenantId: "acme", level: "info", createdAt: 1_700_000_000_000 });
    t.deepEqual(stored.payload, JSON.parse(JSON.stringify(payload)));
    t.deepEqual(stored.metadata, e.metadata);
    t.is(stored.payloadJson, JSON.stringify(payload));
  });
}

test("the payload text is the caller's own when it passed one (not re-serialized)", (t) => {
  const payloadJson = '{ "delta" : "spaced" }';
  const body = encodeBody(newEvent({ delta: "spaced" }, { payloadJson }), "acme");
  const stored = decodeEntry("01JTHREAD00000000000000000", "7-0", { e: body, c: "1" });
  t.is(stored.payloadJson, payloadJson);
  t.deepEqual(stored.payload, { delta: "spaced" });
});

test("a body written some other way still decodes, without payload text", (t) => {
  const body = JSON.stringify({ l: "info", id: "01JEVENT00000000000000000A", tu: "", ty: "x.y", p: { a: 1 }, m: {}, sv: 1, tn: "acme" });
  const stored = decodeEntry("01JTHREAD00000000000000000", "3-0", { e: body, c: "1" });
  t.deepEqual(stored.payload, { a: 1 });
  t.is(stored.payloadJson, undefined);
});
