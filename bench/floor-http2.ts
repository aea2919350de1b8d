// The platform floor: a bare node:http2 server with hand-written gRPC framing
// doing the floors' shared work (bench/floor-log.ts). No framework between
// the socket and the work: what Node itself costs per call and per delivered
// event on this machine. Each live event's frame is made once and written to
// every tail. Run as a child process: `node --import tsx bench/floor-http2.ts`
// with PORT (and HOST).
import { constants, createServer, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import { once } from "node:events";
import { FloorError, FloorLog, floorPaths, type TailSink } from "./floor-log.js";
import { grpcFrame } from "./grpc-wire.js";

const log = new FloorLog(grpcFrame);

const unary: Record<string, (request: Buffer) => Buffer> = {
  [floorPaths.health]: () => log.health(),
  [floorPaths.createThread]: () => log.createThread(),
  [floorPaths.getThread]: (request) => log.getThread(request),
  [floorPaths.appendEvents]: (request) => log.appendEvents(request),
};

const okHeaders = { [constants.HTTP2_HEADER_STATUS]: 200, "content-type": "application/grpc" };
const okTrailers = { "grpc-status": "0" };

function fail(stream: ServerHttp2Stream, err: unknown): void {
  const code = err instanceof FloorError ? err.code : 13;
  const message = encodeURIComponent(err instanceof Error ? err.message : String(err));
  if (stream.headersSent) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  else stream.respond({ ...okHeaders, "grpc-status": String(code), "grpc-message": message }, { endStream: true });
}

/** The request's one message, to `handle` (the bench's requests are one uncompressed frame). */
function onRequest(stream: ServerHttp2Stream, handle: (request: Buffer) => void): void {
  const chunks: Buffer[] = [];
  stream.on("data", (chunk: Buffer) => chunks.push(chunk));
  stream.once("end", () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    handle(body.subarray(5, 5 + body.readUInt32BE(1)));
  });
}

function tailSink(stream: ServerHttp2Stream): TailSink {
  const closed = once(stream, "close").then(() => {});
  let started = false;
  const start = () => {
    if (!started) stream.respond(okHeaders, { waitForTrailers: true });
    started = true;
  };
  stream.on("wantTrailers", () => stream.sendTrailers(okTrailers));
  return {
    write(message) {
      start();
      return stream.write(grpcFrame(message));
    },
    drained: () => once(stream, "drain").then(() => {}),
    writeLive(prepared) {
      if (!stream.closed && !stream.destroyed) stream.write(prepared);
    },
    end() {
      stream.end();
    },
    closed,
    isClosed: () => stream.closed || stream.destroyed,
  };
}

const server = createServer();
server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
  const path = headers[constants.HTTP2_HEADER_PATH] as string;
  stream.on("error", () => {});
  if (path === floorPaths.tailEvents) {
    onRequest(stream, (request) => void log.tail(request, tailSink(stream)).catch((err: unknown) => fail(stream, err)));
    return;
  }
  const handler = unary[path];
  if (!handler) return fail(stream, new FloorError(12, `${path} is not served by the floor`));
  onRequest(stream, (request) => {
    try {
      const response = handler(request);
      stream.respond(okHeaders, { waitForTrailers: true });
      stream.once("wantTrailers", () => stream.sendTrailers(okTrailers));
      stream.end(grpcFrame(response));
    } catch (err) {
      fail(stream, err);
    }
  });
});
// Sessions close with the process: SIGTERM ends it at once.
server.listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? "127.0.0.1", () => {
  process.stdout.write(`node:http2 floor on ${process.env.PORT}\n`);
});
process.once("SIGTERM", () => process.exit(0));
