// Clients that go away mid-call in the ways HTTP/2 allows (a session closed
// with GOAWAY and an error code, a stream reset, a socket cut) while the wire
// path holds their AppendEvents and TailEvents streams: the server keeps
// serving. A session closed with CANCEL once took the process down (an
// 'error' on a raw stream nobody listened to).
import test from "ava";
import http2 from "node:http2";
import { setTimeout as delay } from "node:timers/promises";
import { startTestServer } from "../support/server.js";

const calls = ["AppendEvents", "TailEvents"];

function goAway(session: http2.ClientHttp2Session, code: number): void {
  session.goaway(code);
  session.destroy(undefined, code);
}
const goneAway: [string, (session: http2.ClientHttp2Session, streams: http2.ClientHttp2Stream[]) => void][] = [
  ["GOAWAY with CANCEL", (session) => goAway(session, http2.constants.NGHTTP2_CANCEL)],
  ["GOAWAY with PROTOCOL_ERROR", (session) => goAway(session, http2.constants.NGHTTP2_PROTOCOL_ERROR)],
  ["RST_STREAM with CANCEL", (_, streams) => streams.forEach((s) => s.close(http2.constants.NGHTTP2_CANCEL))],
  ["the socket cut", (session) => session.socket.destroy()],
];

test("clients gone mid-call in every HTTP/2 way leave the server serving", async (t) => {
  const server = await startTestServer("memory");
  t.teardown(() => server.close());
  const { thread } = await server.turns().createThread({});
  for (const [how, leave] of goneAway) {
    for (let i = 0; i < 10; i++) {
      const session = http2.connect(server.baseUrl);
      session.on("error", () => {});
      const streams = calls.map((call) => {
        const stream = session.request({ ":method": "POST", ":path": `/eventide.v1.EventService/${call}`, "content-type": "application/grpc", te: "trailers" });
        stream.on("error", () => {});
        stream.write(Uint8Array.of(0, 0, 0, 0, 10)); // a frame header promising 10 bytes that never come
        return stream;
      });
      await delay(10);
      leave(session, streams);
    }
    await delay(200);
    const res = await server.events().appendEvents({ threadId: thread!.threadId, events: [{ type: "custom" }] });
    t.true(res.lastSeq > 1n, `still appending after ${how}`);
  }
});
