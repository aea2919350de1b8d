// The validate interceptor's shortcut for requests that plainly pass (server/interceptors/plainly-valid.ts):
// its "yes" must never be a request protovalidate refuses, it must say yes to the usual appends
// (else it saves nothing), and the rules it writes out must be the ones proto/ declares.
import test from "ava";
import { create, type DescMessage, getOption, hasOption, type MessageInitShape, toJson } from "@bufbuild/protobuf";
import { field as fieldRules, message as messageRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { FieldRulesSchema, MessageRulesSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { AppendEventsRequestSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { EventInputSchema } from "../../gen/eventide/v1/resources_pb.js";
import { plainlyValid } from "../../server/interceptors/plainly-valid.js";
import { createRequestValidator } from "../../server/interceptors/validate.js";
import { hostileValue, Random, randomMessage } from "../support/fuzz-inputs.js";

const validator = createRequestValidator();
const check = plainlyValid.get(AppendEventsRequestSchema)!;
const ulid = "01J00000000000000000000000";
type Init = MessageInitShape<typeof AppendEventsRequestSchema>;
const append = (init: Init) => create(AppendEventsRequestSchema, init);
const valid = (init: Init) => validator.validate(AppendEventsRequestSchema, append(init)).kind === "valid";

test("the usual appends are plainly valid", (t) => {
  const usual: Init[] = [
    { threadId: ulid, events: [{ type: "bench.tick", payload: { delta: "x".repeat(1000) } }] },
    { threadId: ulid, turnId: ulid, leaseId: "l".repeat(64), expectedLastSeq: 0n, events: [{ eventId: "t-1-0", type: "message.delta", level: "debug", schemaVersion: 1_000_000, metadata: { correlation_id: "c".repeat(1024) } }] },
    { threadId: ulid, expectedLastSeq: BigInt(Number.MAX_SAFE_INTEGER), events: Array.from({ length: 1000 }, () => ({ type: "a" })) },
  ];
  for (const init of usual) {
    t.true(check(append(init)), JSON.stringify(init, (_, v) => (typeof v === "bigint" ? String(v) : v)));
    t.true(valid(init));
  }
});

test("a request just past any rule is left to protovalidate", (t) => {
  const base = { threadId: ulid, events: [{ type: "a" }] };
  const event = (e: object): Init => ({ threadId: ulid, events: [{ type: "a", ...e }] });
  const past: Init[] = [
    { ...base, threadId: "" },
    { ...base, threadId: ulid.toLowerCase() },
    { ...base, turnId: "x" },
    { ...base, leaseId: "l" },
    { ...base, turnId: ulid, leaseId: "l".repeat(65) },
    { ...base, expectedLastSeq: -1n },
    { ...base, expectedLastSeq: BigInt(Number.MAX_SAFE_INTEGER) + 1n },
    { threadId: ulid, events: [] },
    { threadId: ulid, events: Array.from({ length: 1001 }, () => ({ type: "a" })) },
    event({ eventId: "a b" }),
    event({ eventId: "e".repeat(65) }),
    event({ type: "" }),
    event({ type: "A" }),
    event({ type: `a${".b".repeat(64)}` }),
    event({ schemaVersion: -1 }),
    event({ schemaVersion: 1_000_001 }),
    event({ level: "fatal" }),
    event({ metadata: { "": "v" } }),
    event({ metadata: { ["k".repeat(129)]: "v" } }),
    event({ metadata: { k: "v".repeat(1025) } }),
    event({ metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"])) }),
  ];
  for (const init of past) {
    const shown = JSON.stringify(init, (_, v) => (typeof v === "bigint" ? String(v) : v)).slice(0, 200);
    t.false(check(append(init)), shown);
    t.false(valid(init), shown);
  }
});

test("random and hostile requests: never plainly valid when protovalidate refuses them", (t) => {
  const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.log(`FUZZ_SEED=${seed}`);
  const r = new Random(seed);
  let yes = 0;
  for (let i = 0; i < 3000; i++) {
    const m = randomMessage(r, AppendEventsRequestSchema) as ReturnType<typeof append>;
    // Half of them made mostly valid, so the shortcut's "yes" is exercised too.
    if (r.chance(0.5)) {
      m.threadId = ulid;
      if (r.chance(0.7)) m.turnId = r.chance(0.5) ? "" : ulid;
      if (r.chance(0.7)) m.leaseId = "";
      if (m.events.length === 0 || m.events.length > 1000) m.events = [create(EventInputSchema, { type: "a" })];
      for (const e of m.events) if (r.chance(0.8)) e.type = r.pick(["a", "message.delta", "b_c.d9"]);
    }
    if (r.chance(0.3) && m.events.length > 0) {
      const f = r.pick(EventInputSchema.fields);
      (m.events[0] as unknown as Record<string, unknown>)[f.localName] = hostileValue(r, f, m.events[0]);
    }
    const verdict = validator.validate(AppendEventsRequestSchema, m);
    if (check(m)) {
      yes++;
      if (verdict.kind !== "valid") t.fail(`plainly valid, but protovalidate says ${verdict.kind} (seed ${seed}, message ${i})`);
    }
  }
  t.true(yes > 100, `only ${yes} random requests were plainly valid`);
});

/** The rules a message and its fields declare, as JSON. */
function declaredRules(schema: DescMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (hasOption(schema, messageRules)) out["(message)"] = toJson(MessageRulesSchema, getOption(schema, messageRules));
  for (const f of schema.fields) if (hasOption(f, fieldRules)) out[f.name] = toJson(FieldRulesSchema, getOption(f, fieldRules));
  return out;
}

test("the rules written out are the ones proto/ declares (change plainly-valid.ts with them)", (t) => {
  t.snapshot({ AppendEventsRequest: declaredRules(AppendEventsRequestSchema), EventInput: declaredRules(EventInputSchema) });
});
