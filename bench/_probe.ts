import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import { AppendEventsRequestSchema } from "../gen/eventide/v1/event_service_pb.js";
import { ulid } from "ulid";
const events = Array.from({ length: 100 }, () => ({ type: "bench.tick", payload: { delta: "x".repeat(1000) } }));
for (let r = 0; r < 3; r++) {
  let t = performance.now();
  let bytes: Uint8Array | undefined;
  for (let i = 0; i < 100; i++) bytes = toBinary(AppendEventsRequestSchema, create(AppendEventsRequestSchema, { threadId: "x", events }));
  console.log("encode batch ms", (performance.now() - t) / 100, bytes!.length);
  t = performance.now();
  for (let i = 0; i < 100; i++) fromBinary(AppendEventsRequestSchema, bytes!);
  console.log("decode batch ms", (performance.now() - t) / 100);
  t = performance.now();
  for (let i = 0; i < 10000; i++) ulid();
  console.log("ulid us", (performance.now() - t) / 10000 * 1000);
  t = performance.now();
  for (let i = 0; i < 10000; i++) structuredClone({ delta: "x".repeat(1000), a: 1 });
  console.log("structuredClone us", (performance.now() - t) / 10000 * 1000);
}
