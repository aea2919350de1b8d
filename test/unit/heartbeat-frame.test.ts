// The hand-written heartbeat frame that idle tails get must be exactly the envelope of what
// protobuf-es writes for the same TailEventsResponse.
import test from "ava";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { TailEventsResponseSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { heartbeatFrame } from "../../server/services/live-frames.js";
import { Random } from "../support/fuzz-inputs.js";

function expected(scannedSeq: number, atMs: number): Buffer {
  const response = toBinary(
    TailEventsResponseSchema,
    create(TailEventsResponseSchema, { item: { case: "heartbeat", value: { scannedSeq: BigInt(scannedSeq), sentAt: timestampFromMs(atMs) } } }),
  );
  const out = Buffer.alloc(5 + response.byteLength);
  out.writeUInt32BE(response.byteLength, 1);
  out.set(response, 5);
  return out;
}

const cases: [number, number][] = [
  [0, 0],
  [0, 1_000],
  [1, 1_767_225_600_123],
  [127, 1_767_225_600_000],
  [128, 999],
  [16_383, 1],
  [16_384, 4_102_444_800_999],
  [2 ** 31 - 1, 1_767_225_600_500],
  [2 ** 31, 1_767_225_600_001],
  [2 ** 32 + 5, 1_767_225_600_999],
  [Number.MAX_SAFE_INTEGER, 253_402_300_799_999],
];

test("a heartbeat frame is the envelope of what toBinary writes", (t) => {
  for (const [seq, at] of cases) t.deepEqual(heartbeatFrame(seq, at), expected(seq, at), `seq ${seq} at ${at}`);
});

test("seeded random seqs and times encode alike", (t) => {
  const random = new Random(0x9e3779b9);
  const next = () => random.next();
  for (let i = 0; i < 2_000; i++) {
    const seq = Math.floor(next() ** 3 * Number.MAX_SAFE_INTEGER);
    const at = Math.floor(next() * 4_102_444_800_000);
    t.deepEqual(heartbeatFrame(seq, at), expected(seq, at), `seq ${seq} at ${at}`);
  }
});
