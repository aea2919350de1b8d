// The eventide server as clients meet it: one port, reflection, HTTP/1.1 and CORS.
import test from "ava";
import { startTestServer, type TestServer } from "../support/server.js";
import { bufCurl } from "../support/buf-curl.js";

let server: TestServer;
test.before(async () => {
  server = await startTestServer("memory", { EVENTIDE_CORS_ORIGINS: "https://app.example" });
});
test.after.always(async () => server?.close());

test("buf curl lists every service through reflection, with no proto files", async (t) => {
  const services = await bufCurl("--list-services", server.baseUrl);
  for (const name of [
    "eventide.v1.TurnService",
    "eventide.v1.EventService",
    "eventide.v1.ArchiveService",
    "eventide.v1.AgentService",
    "grpc.health.v1.Health",
  ]) {
    t.true(services.includes(name), name);
  }
  const methods = await bufCurl("--list-methods", server.baseUrl);
  t.true(methods.includes("eventide.v1.EventService/TailEvents"));
  t.true(methods.includes("eventide.v1.AgentService/ReceiveTurns"));
});

test("buf curl submits a turn and tails its thread", async (t) => {
  const submitted = JSON.parse(
    (await bufCurl("-d", '{"input":{"text":"hi"}}', `${server.baseUrl}/eventide.v1.TurnService/SubmitTurn`)).join("\n"),
  );
  t.is(submitted.seq, "2");
  const tail = (await bufCurl("-d", JSON.stringify({ thread_id: submitted.thread.threadId }), `${server.baseUrl}/eventide.v1.EventService/TailEvents`)).join("\n");
  t.regex(tail, /"type": "thread.created"[\s\S]*"type": "turn.submitted"[\s\S]*"caughtUp"/);
});

test("Connect over HTTP/1.1 (browsers) shares the port with HTTP/2", async (t) => {
  const res = await fetch(`${server.baseUrl}/eventide.v1.TurnService/CreateThread`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  t.is(res.status, 200);
  const body = (await res.json()) as { thread: { threadId: string; lastSeq: string } };
  t.is(body.thread.lastSeq, "1");
});

test("CORS: preflight for a configured origin, nothing for others", async (t) => {
  const preflight = await fetch(`${server.baseUrl}/eventide.v1.EventService/TailEvents`, {
    method: "OPTIONS",
    headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type,connect-protocol-version" },
  });
  t.is(preflight.status, 204);
  t.is(preflight.headers.get("access-control-allow-origin"), "https://app.example");
  t.regex(preflight.headers.get("access-control-allow-headers") ?? "", /Connect-Protocol-Version/i);
  const other = await fetch(`${server.baseUrl}/eventide.v1.TurnService/CreateThread`, {
    method: "POST",
    headers: { origin: "https://evil.example", "content-type": "application/json" },
    body: "{}",
  });
  t.is(other.headers.get("access-control-allow-origin"), null);
});
