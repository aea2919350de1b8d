// Finding a "__proto__" key before a decoder drops it: in JSON text and in binary requests,
// told apart from the same text in a value or a longer key.
import test from "ava";
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { AppendEventsRequestSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { protoKeyInBinary, protoKeyInJson } from "../../server/wire/proto-keys.js";

/** protobuf-es drops the key when it encodes, as when it decodes: a stand-in of the same length is patched. */
function appendBytes(init: MessageInitShape<typeof AppendEventsRequestSchema>): Uint8Array {
  const bytes = Buffer.from(toBinary(AppendEventsRequestSchema, create(AppendEventsRequestSchema, init)));
  for (let at = bytes.indexOf("__proto@@"); at >= 0; at = bytes.indexOf("__proto@@", at)) bytes.write("__proto__", at);
  return bytes;
}

test("binary: the path of the map or Struct holding the key, through lists, Structs and map values", (t) => {
  const cases: [MessageInitShape<typeof AppendEventsRequestSchema>, string | undefined][] = [
    [{ events: [{ type: "a", metadata: { "__proto@@": "v" } }] }, "events[0].metadata"],
    [{ events: [{ type: "a" }, { type: "b", payload: { x: [1, { y: { "__proto@@": null } }] } }] }, "events[1].payload.x[1].y"],
    [{ events: [{ type: "a", payload: { "__proto@@": {} } }] }, "events[0].payload"],
    // The same text as a value, in a longer key, or in a field that is no map: kept.
    [{ threadId: "__proto@@", events: [{ type: "__proto@@", metadata: { k: "__proto@@", "__proto@@x": "v" }, payload: { a: "__proto@@", l: ["__proto@@"] } }] }, undefined],
  ];
  for (const [init, path] of cases) t.is(protoKeyInBinary(AppendEventsRequestSchema, appendBytes(init)), path, JSON.stringify(init));
});

test("binary: bytes that are not the message are left to the decoder", (t) => {
  const bytes = appendBytes({ events: [{ type: "a", metadata: { "__proto@@": "v" } }] });
  t.is(protoKeyInBinary(AppendEventsRequestSchema, bytes.subarray(0, bytes.length - 3)), undefined);
});

test("JSON: the key as written or spelt with escapes; values and other keys are not keys", (t) => {
  t.is(protoKeyInJson('{"events":[{"payload":{"a":{"__proto__":1}}}]}'), "events[0].payload.a");
  t.is(protoKeyInJson('{"metadata":{"\\u005f\\u005fproto__":"v"}}'), "metadata");
  t.is(protoKeyInJson('{"__proto__":1}'), "");
  t.is(protoKeyInJson('{"text":"__proto__","__proto__x":["__proto__"],"e":"\\u00e9"}'), undefined);
  t.is(protoKeyInJson('{"__proto__":'), undefined, "not JSON: the decoder says so");
});
