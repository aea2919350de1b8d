// The bench's lean clients cut gRPC frames out of a stream's chunks (bench/grpc-wire.ts): every
// message must come out whole and in order however the stream is cut, large frames included.
import test from "ava";
import { FrameReader, grpcFrame } from "../../bench/grpc-wire.js";
import { Random } from "../support/fuzz-inputs.js";

test("messages come out whole and in order, however the stream is cut", (t) => {
  const random = new Random(0xf4a3e);
  const next = () => random.next();
  for (let round = 0; round < 200; round++) {
    const messages = Array.from({ length: 1 + Math.floor(next() * 20) }, (_, i) => {
      const size = Math.floor(next() * (next() < 0.2 ? 200_000 : 300));
      return Buffer.alloc(size, (round * 31 + i) & 255);
    });
    const stream = Buffer.concat(messages.map((m) => grpcFrame(m)));
    const reader = new FrameReader();
    const out: Buffer[] = [];
    for (let at = 0; at < stream.length; ) {
      const n = 1 + Math.floor(next() * (next() < 0.5 ? 7 : 20_000));
      reader.push(stream.subarray(at, at + n), (buf, from, end) => void out.push(Buffer.from(buf.subarray(from, end))));
      at += n;
    }
    t.is(out.length, messages.length, `round ${round}`);
    for (let i = 0; i < messages.length; i++) if (!out[i].equals(messages[i])) t.fail(`round ${round}, message ${i}`);
  }
});

test("a handler that returns true stops the reading there", (t) => {
  const reader = new FrameReader();
  const seen: number[] = [];
  const stream = Buffer.concat([1, 2, 3].map((n) => grpcFrame(Buffer.from([n]))));
  t.true(reader.push(stream, (buf, from) => (seen.push(buf[from]), buf[from] === 2)));
  t.deepEqual(seen, [1, 2]);
});
