// Reflection and health over a real HTTP/2 socket, checked with buf curl (our grpcurl stand-in)
// and a Connect gRPC client, since both are protocol behaviour.
import test from "ava";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createRouterTransport, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { EventService, file_eventide_v1_event_service } from "../../gen/eventide/v1/event_service_pb.js";
import { file_grpc_health_v1_health, Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { file_grpc_reflection_v1_reflection, ServerReflection } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { file_grpc_reflection_v1alpha_reflection } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { healthService, HealthStatus } from "../../server/services/health-service.js";
import { registerReflection } from "../../server/services/reflection-service.js";
import { bufCurl } from "../support/buf-curl.js";

const status = new HealthStatus();
const sessions = new Set<http2.ServerHttp2Session>();
let baseUrl = "";

function routes(health: HealthStatus) {
  return (router: ConnectRouter) => {
    router.service(EventService, {}); // a stub: reflection only needs the descriptor
    router.service(Health, healthService(health));
    registerReflection(router, [
      file_eventide_v1_event_service,
      file_grpc_health_v1_health,
      file_grpc_reflection_v1_reflection,
      file_grpc_reflection_v1alpha_reflection,
    ]);
  };
}

const server = http2.createServer(connectNodeAdapter({ routes: routes(status) }));
server.on("session", (s) => {
  sessions.add(s);
  s.on("close", () => sessions.delete(s));
});

test.before(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after.always(async () => {
  for (const s of sessions) s.destroy(); // server.close() waits for open sessions otherwise
  await new Promise((resolve) => server.close(resolve));
});

const transport = () => createGrpcTransport({ baseUrl }) // gRPC transport is always HTTP/2;


for (const reflectProtocol of ["grpc-v1", "grpc-v1alpha"]) {
  test(`buf curl lists services and methods via ${reflectProtocol}`, async (t) => {
    const services = await bufCurl("--reflect-protocol", reflectProtocol, "--list-services", baseUrl);
    t.deepEqual(services.sort(), [
      "eventide.v1.EventService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);

    const methods = await bufCurl("--reflect-protocol", reflectProtocol, "--list-methods", baseUrl);
    for (const m of ["eventide.v1.EventService/TailEvents", "eventide.v1.EventService/AppendEvents", "grpc.health.v1.Health/Watch"]) {
      t.true(methods.includes(m), `${m} missing from ${methods.join(", ")}`);
    }
  });
}

test("buf curl calls a method it learned through reflection", async (t) => {
  const out = await bufCurl("-d", '{"service":""}', `${baseUrl}/grpc.health.v1.Health/Check`);
  t.deepEqual(JSON.parse(out.join("\n")), { status: "SERVING" });
});

test("reflection sends a file with its transitive dependencies", async (t) => {
  const client = createClient(ServerReflection, transport());
  async function* requests() {
    yield { messageRequest: { case: "fileContainingSymbol" as const, value: "eventide.v1.EventService.TailEvents" } };
    yield { messageRequest: { case: "fileContainingSymbol" as const, value: "eventide.v1.NoSuchThing" } };
    yield { messageRequest: { case: "fileByFilename" as const, value: "google/protobuf/timestamp.proto" } };
  }
  const answers = [];
  for await (const res of client.serverReflectionInfo(requests())) answers.push(res.messageResponse);

  t.is(answers[0].case, "fileDescriptorResponse");
  const names = (answers[0].value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto.map(
    (b) => fromBinary(FileDescriptorProtoSchema, b).name,
  );
  t.is(names[0], "eventide/v1/event_service.proto");
  t.true(names.includes("eventide/v1/resources.proto"));
  t.true(names.includes("google/protobuf/timestamp.proto"));

  t.like(answers[1], { case: "errorResponse", value: { errorCode: Code.NotFound } });
  t.is(answers[2].case, "fileDescriptorResponse");
});

test("Health.Check answers SERVING, and NotFound for an unknown service", async (t) => {
  const client = createClient(Health, transport());
  t.is((await client.check({ service: "" })).status, ServingStatus.SERVING);
  const err = await t.throwsAsync(client.check({ service: "no.such.Service" }));
  t.is(ConnectError.from(err).code, Code.NotFound);
});

test("Health.Watch sends the current status, then each change", async (t) => {
  t.timeout(10_000); // a missed change would otherwise hang until ava's global timeout
  const client = createClient(Health, transport());
  const abort = new AbortController(); // break alone does not cancel the call
  const seen: ServingStatus[] = [];
  try {
    for await (const res of client.watch({ service: "eventide.v1.EventService" }, { signal: abort.signal })) {
      seen.push(res.status);
      if (seen.length == 1) status.set("eventide.v1.EventService", ServingStatus.SERVING);
      if (seen.length == 2) status.set("eventide.v1.EventService", ServingStatus.NOT_SERVING);
      if (seen.length == 3) break;
    }
  } finally {
    abort.abort();
  }
  t.deepEqual(seen, [ServingStatus.SERVICE_UNKNOWN, ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
});

test("markShuttingDown turns everything NOT_SERVING for good", async (t) => {
  const health = new HealthStatus();
  health.set("eventide.v1.EventService", ServingStatus.SERVING);
  const client = createClient(Health, createRouterTransport(routes(health)));
  health.markShuttingDown();
  health.set("", ServingStatus.SERVING); // ignored once shutting down
  t.is((await client.check({ service: "" })).status, ServingStatus.NOT_SERVING);
  t.is((await client.check({ service: "eventide.v1.EventService" })).status, ServingStatus.NOT_SERVING);
});
