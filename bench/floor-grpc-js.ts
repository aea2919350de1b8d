// The grpc-js floor: a bare @grpc/grpc-js server doing the floors' shared
// work (bench/floor-log.ts). Messages pass through as bytes (identity
// serializers), so the gap to bench/floor-http2.ts is grpc-js's own cost per
// call and per delivered event. Run as a child process:
// `node --import tsx bench/floor-grpc-js.ts` with PORT (and HOST).
import { Server, ServerCredentials, type ServerWritableStream, type ServiceDefinition, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { once } from "node:events";
import { FloorError, FloorLog, floorPaths, type TailSink } from "./floor-log.js";

/** grpc-js writes each live item itself: the same message goes to every tail. */
const log = new FloorLog((message) => message);

const bytes = (b: Buffer) => b;
function method(path: string, responseStream: boolean) {
  return { path, requestStream: false, responseStream, requestSerialize: bytes, requestDeserialize: bytes, responseSerialize: bytes, responseDeserialize: bytes };
}

// One definition for every path the floors answer (grpc-js registers handlers by path).
const definition: ServiceDefinition = {
  check: method(floorPaths.health, false),
  createThread: method(floorPaths.createThread, false),
  getThread: method(floorPaths.getThread, false),
  appendEvents: method(floorPaths.appendEvents, false),
  tailEvents: method(floorPaths.tailEvents, true),
};

type Unary = (call: { request: Buffer }, callback: (err: { code: number; details: string } | null, response?: Buffer) => void) => void;

function unary(work: (request: Buffer) => Buffer): Unary {
  return (call, callback) => {
    let response: Buffer;
    try {
      response = work(call.request);
    } catch (err) {
      return callback(asStatus(err));
    }
    callback(null, response);
  };
}

function asStatus(err: unknown): { code: number; details: string } {
  return { code: err instanceof FloorError ? err.code : 13, details: err instanceof Error ? err.message : String(err) };
}

function tailSink(call: ServerWritableStream<Buffer, Buffer>): TailSink {
  let over = false;
  const closed = Promise.race([once(call, "cancelled"), once(call, "finish"), once(call, "close"), once(call, "error")]).then(() => {
    over = true;
  });
  return {
    write: (message) => call.write(message),
    drained: () => once(call, "drain").then(() => {}),
    writeLive(prepared) {
      if (!over) call.write(prepared);
    },
    end: () => call.end(),
    closed,
    isClosed: () => over || call.cancelled,
  };
}

const implementation: UntypedServiceImplementation = {
  check: unary(() => log.health()),
  createThread: unary(() => log.createThread()),
  getThread: unary((request) => log.getThread(request)),
  appendEvents: unary((request) => log.appendEvents(request)),
  tailEvents: (call: ServerWritableStream<Buffer, Buffer>) => {
    log.tail(call.request, tailSink(call)).catch((err: unknown) => call.emit("error", asStatus(err)));
  },
};

const server = new Server();
server.addService(definition, implementation);
const address = `${process.env.HOST ?? "127.0.0.1"}:${process.env.PORT ?? 8080}`;
server.bindAsync(address, ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  process.stdout.write(`grpc-js floor on ${address}\n`);
});
process.once("SIGTERM", () => process.exit(0));
