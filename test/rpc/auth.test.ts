// API keys, roles and tenants through the real server, on both tiers: every
// RPC refuses anonymous and unknown keys, checks the key's role, and answers
// another tenant's ids exactly as unknown ones, changing nothing.
import test from "ava";
import { create, type DescService, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { ulid } from "ulid";
import { AgentService } from "../../gen/eventide/v1/agent_service_pb.js";
import { ArchiveService } from "../../gen/eventide/v1/archive_service_pb.js";
import { AppendEventsRequestSchema, EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import type { CallerRole } from "../../server/config.js";
import { mayCall } from "../../server/interceptors/auth.js";
import { hold, startTestAgent } from "../support/agents.js";
import { apiKeysEnv, clientsWithAuthorization, clientsWithKey, type KeyedClients, refusal } from "../support/keys.js";
import { curl } from "../support/curl.js";
import { connectStream, connectUnary, envelope, grpcWeb } from "../support/raw-rpc.js";
import { serverPerTier, type TestServer, tierKinds, waitPersisted } from "../support/server.js";

const keys = {
  acmeClient: { key: "acme-client-key-0001", tenant: "acme", role: "client" },
  acmeAgent: { key: "acme-agent-key-0001", tenant: "acme", role: "agent" },
  globexClient: { key: "globex-client-key-01", tenant: "globex", role: "client" },
  globexAgent: { key: "globex-agent-key-001", tenant: "globex", role: "agent" },
  globexAdmin: { key: "globex-admin-key-001", tenant: "globex", role: "admin" },
  admin: { key: "root-admin-key-00001", tenant: "*", role: "admin" },
  anyAgent: { key: "any-agent-key-000001", tenant: "*", role: "agent" },
};
type KeyName = keyof typeof keys;

const servers = serverPerTier(test, { EVENTIDE_API_KEYS: apiKeysEnv(keys), EVENTIDE_LEASE_TTL: "5s", EVENTIDE_LEASE_SWEEP: "100ms" });

const as = (server: TestServer, who: KeyName): KeyedClients => clientsWithKey(server.baseUrl, keys[who].key);

/** Drains a server stream (first few messages), so its error surfaces. */
async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  let n = 0;
  for await (const _ of stream) if (++n >= 3) break;
}

/** The role table as README.md documents it, written out: the test does not trust the server's own. */
const reads = ["GetThread", "ListThreads", "GetTurn", "ListTurns", "TailEvents", "ListEvents", "GetEvent", "ListArchives", "GetArchive"];
const expectedAllowed: Record<CallerRole, Set<string>> = {
  client: new Set([...reads, "CreateThread", "SubmitTurn", "CancelTurn", "DeleteThread"]),
  agent: new Set([...reads, "ReceiveTurns", "RenewLease", "CompleteTurn", "FailTurn", "AppendEvents"]),
  admin: new Set([...reads, "CreateThread", "SubmitTurn", "CancelTurn", "DeleteThread", "ReceiveTurns", "RenewLease", "CompleteTurn", "FailTurn", "AppendEvents", "ArchiveThread"]),
};

const methodsOf = (service: DescService) => service.methods.map((m) => ({ service, method: m }));
const everyMethod = [TurnService, EventService, ArchiveService, AgentService].flatMap(methodsOf);

for (const tier of tierKinds) {
  test(`${tier}: no key, a malformed header or an unknown key is UNAUTHENTICATED on every RPC; health stays open`, async (t) => {
    const server = servers.get(tier)!;
    for (const authorization of [undefined, "Basic dXNlcjpwYXNz", "Bearer", "Bearer not-a-configured-key"]) {
      const clients = clientsWithAuthorization(server.baseUrl, authorization);
      for (const { service, method } of everyMethod) {
        const client = createClient(service, clients.transport) as unknown as Record<string, (req: object, opts?: object) => unknown>;
        const call = client[method.localName];
        const controller = new AbortController();
        const err = await refusal(async () => {
          const res = call({}, { signal: controller.signal });
          if (method.methodKind === "server_streaming") await drain(res as AsyncIterable<unknown>);
          else await res;
        });
        controller.abort();
        t.is(err.code, Code.Unauthenticated, `${authorization ?? "no header"} → ${service.name}.${method.name}: ${err.message}`);
      }
    }
    const health = createClient(Health, clientsWithAuthorization(server.baseUrl, undefined).transport);
    t.is((await health.check({ service: "" })).status, 1);
  });

  test(`${tier}: two Authorization headers are UNAUTHENTICATED on every protocol, even two good keys, and write nothing`, async (t) => {
    const server = servers.get(tier)!;
    const { thread } = await as(server, "admin").turns.createThread({});
    const threadId = thread!.threadId;
    const lastSeq = async () => (await as(server, "admin").turns.getThread({ threadId })).thread!.lastSeq;
    // Keys that could each append to the thread: which one counts is anybody's guess, so neither does.
    const both = [`Bearer ${keys.anyAgent.key}`, `Bearer ${keys.admin.key}`];
    const request = create(AppendEventsRequestSchema, { threadId, events: [{ type: "x.y" }] });
    const json = toJsonString(AppendEventsRequestSchema, request);
    const binary = toBinary(AppendEventsRequestSchema, request);
    const append = `${server.baseUrl}/eventide.v1.EventService/AppendEvents`;
    const duplicate = { kind: "error", code: Code.Unauthenticated, message: "more than one Authorization header" };
    const h1 = { authorization: both };
    // HTTP/1.1: Connect (JSON and binary), gRPC-Web, and a server stream.
    t.deepEqual(await connectUnary(append, "application/json", new TextEncoder().encode(json), h1, 10_000), duplicate);
    t.deepEqual(await connectUnary(append, "application/proto", binary, h1, 10_000), duplicate);
    t.deepEqual(await grpcWeb(append, "application/grpc-web+proto", envelope(binary), h1, 10_000), duplicate);
    const tail = `${server.baseUrl}/eventide.v1.EventService/TailEvents`;
    t.deepEqual(await connectStream(tail, "application/connect+json", envelope(new TextEncoder().encode(`{"thread_id":"${threadId}"}`)), h1, 10_000), duplicate);
    // HTTP/2: gRPC and Connect.
    const h2 = ["--http2-prior-knowledge", ...both.flatMap((b) => ["-H", `authorization: ${b}`])];
    const grpc = await curl(append, [...h2, "-H", "content-type: application/grpc", "-H", "te: trailers"], envelope(binary));
    t.is(grpc.headers["grpc-status"], String(Code.Unauthenticated));
    t.is(decodeURIComponent(grpc.headers["grpc-message"]), duplicate.message);
    const connect = await curl(append, [...h2, "-H", "content-type: application/json"], json);
    t.is(connect.status, 401);
    t.deepEqual(JSON.parse(connect.body), { code: "unauthenticated", message: duplicate.message });
    t.is(await lastSeq(), 1n, "nothing was appended");
    // One of them alone appends, on the same path.
    const one = await curl(append, ["--http2-prior-knowledge", "-H", `authorization: ${both[1]}`, "-H", "content-type: application/json"], json);
    t.is(one.status, 200, one.body);
    t.is(await lastSeq(), 2n);
  });

  test(`${tier}: each role may call exactly its methods; others are PERMISSION_DENIED`, async (t) => {
    const server = servers.get(tier)!;
    const roles: Record<CallerRole, KeyName> = { client: "acmeClient", agent: "acmeAgent", admin: "globexAdmin" };
    for (const [role, who] of Object.entries(roles) as [CallerRole, KeyName][]) {
      const clients = as(server, who);
      for (const { service, method } of everyMethod) {
        const client = createClient(service, clients.transport) as unknown as Record<string, (req: object, opts?: object) => unknown>;
        const controller = new AbortController();
        // Empty requests: an allowed method answers something other than PERMISSION_DENIED
        // (mostly INVALID_ARGUMENT; CreateThread and ListThreads succeed).
        const outcome = await (async () => {
          try {
            const res = client[method.localName]({}, { signal: controller.signal });
            if (method.methodKind === "server_streaming") await drain(res as AsyncIterable<unknown>);
            else await res;
            return "ok";
          } catch (err) {
            return Code[ConnectError.from(err).code];
          } finally {
            controller.abort();
          }
        })();
        const denied = outcome === Code[Code.PermissionDenied];
        t.is(denied, !expectedAllowed[role].has(method.name), `${role} → ${service.name}.${method.name}: ${outcome}`);
      }
    }
    // The server's table is the documented one, method by method.
    for (const role of ["client", "agent", "admin"] as const) {
      for (const { method } of everyMethod) t.is(mayCall(role, method.name), expectedAllowed[role].has(method.name), `${role} → ${method.name}`);
    }
  });

  test.serial(`${tier}: another tenant's ids answer exactly as unknown ones on every RPC, and change nothing`, async (t) => {
    const server = servers.get(tier)!;
    const acme = as(server, "acmeClient");
    const globex = as(server, "globexClient");
    const globexAgent = as(server, "globexAgent");
    const globexAdmin = as(server, "globexAdmin");

    // A globex agent is already waiting when acme's turn arrives: it must not get it.
    const globexFeed = startTestAgent(globexAgent.transport, "globex-agent", hold);
    const submitted = await acme.turns.submitTurn({ input: { text: "acme's secret" } });
    const threadId = submitted.thread!.threadId;
    const turnId = submitted.turn!.turnId;
    const acmeFeed = startTestAgent(as(server, "acmeAgent").transport, "acme-agent", hold);
    const [assignment] = await acmeFeed.waitForAssignments(1);
    t.is(assignment.turn!.turnId, turnId);
    const leaseId = assignment.leaseId;
    const appended = await as(server, "acmeAgent").events.appendEvents({
      threadId,
      turnId,
      leaseId,
      events: [{ eventId: `acme-${ulid()}`, type: "message.delta", payload: { delta: "secret" } }],
    });
    const eventId = appended.events[0].eventId;
    const before = await acme.turns.getThread({ threadId });

    const unknownThread = ulid();
    const unknownTurn = ulid();
    const unknownLease = `${ulid()}.${ulid()}`;
    const unknownEvent = `acme-${ulid()}`;
    /** Each probe: the same call on acme's id and on an unknown id. */
    const probes: [string, (id: "acme" | "unknown") => Promise<unknown>][] = [
      ["GetThread", (w) => globex.turns.getThread({ threadId: w === "acme" ? threadId : unknownThread })],
      ["SubmitTurn", (w) => globex.turns.submitTurn({ threadId: w === "acme" ? threadId : unknownThread, input: { text: "x" } })],
      ["GetTurn", (w) => globex.turns.getTurn({ turnId: w === "acme" ? turnId : unknownTurn })],
      ["ListTurns", (w) => globex.turns.listTurns({ threadId: w === "acme" ? threadId : unknownThread })],
      ["CancelTurn", (w) => globex.turns.cancelTurn({ turnId: w === "acme" ? turnId : unknownTurn })],
      ["DeleteThread", (w) => globex.turns.deleteThread({ threadId: w === "acme" ? threadId : unknownThread })],
      ["TailEvents", (w) => drain(globex.events.tailEvents({ threadId: w === "acme" ? threadId : unknownThread, afterSeq: 0n }))],
      ["ListEvents", (w) => globex.events.listEvents({ threadId: w === "acme" ? threadId : unknownThread })],
      ["GetEvent", (w) => globex.events.getEvent({ eventId: w === "acme" ? eventId : unknownEvent })],
      ["ListArchives", (w) => globex.archives.listArchives({ threadId: w === "acme" ? threadId : unknownThread })],
      ["ArchiveThread", (w) => globexAdmin.archives.archiveThread({ threadId: w === "acme" ? threadId : unknownThread })],
      [
        "AppendEvents",
        (w) =>
          globexAgent.events.appendEvents({
            threadId: w === "acme" ? threadId : unknownThread,
            events: [{ type: "message.delta", payload: { delta: "intruder" } }],
          }),
      ],
      [
        "AppendEvents under acme's lease",
        (w) =>
          globexAgent.events.appendEvents({
            threadId: w === "acme" ? threadId : unknownThread,
            turnId: w === "acme" ? turnId : unknownTurn,
            leaseId: w === "acme" ? leaseId : unknownLease,
            events: [{ type: "message.delta", payload: { delta: "intruder" } }],
          }),
      ],
      ["RenewLease", (w) => globexAgent.agents.renewLease({ leaseId: w === "acme" ? leaseId : unknownLease })],
      ["CompleteTurn", (w) => globexAgent.agents.completeTurn({ turnId, leaseId: w === "acme" ? leaseId : unknownLease })],
      ["FailTurn", (w) => globexAgent.agents.failTurn({ turnId, leaseId: w === "acme" ? leaseId : unknownLease, error: "x" })],
    ];
    for (const [name, call] of probes) {
      const foreign = await refusal(() => call("acme"));
      const unknown = await refusal(() => call("unknown"));
      t.is(Code[foreign.code], Code[unknown.code], `${name}: ${foreign.message} vs ${unknown.message}`);
      t.true([Code.NotFound, Code.FailedPrecondition].includes(foreign.code), `${name}: ${Code[foreign.code]}`);
      const anonymised = (m: string) => m.replaceAll(/[0-9A-HJKMNP-TV-Z]{26}/g, "<id>").replaceAll(/acme-<id>/g, "<event>");
      t.is(anonymised(foreign.rawMessage), anonymised(unknown.rawMessage), name);
    }

    // Listings never show acme's data to globex, even when asked for it by name.
    t.false((await globex.turns.listThreads({ pageSize: 1000 })).threads.some((th) => th.threadId === threadId));
    await acmeFeed.agents.completeTurn({ turnId, leaseId, output: {} });
    const done = await acme.turns.getTurn({ turnId });
    t.is(done.turn!.status, TurnStatus.COMPLETED);
    await waitPersisted(server, threadId, Number((await acme.turns.getThread({ threadId })).thread!.lastSeq));
    t.false((await globex.events.listEvents({ tenantId: "acme", pageSize: 1000 })).events.some((e) => e.threadId === threadId));
    t.true((await acme.events.listEvents({ pageSize: 1000 })).events.some((e) => e.threadId === threadId));
    const [archive] = (await as(server, "admin").archives.archiveThread({ threadId })).archives;
    t.truthy(archive);
    const foreignArchive = await refusal(() => globex.archives.getArchive({ archiveId: archive.archiveId }));
    const unknownArchive = await refusal(() => globex.archives.getArchive({ archiveId: ulid() }));
    t.is(foreignArchive.code, Code.NotFound);
    t.is(unknownArchive.code, Code.NotFound);
    t.is((await acme.archives.getArchive({ archiveId: archive.archiveId })).archive!.archiveId, archive.archiveId);

    // Nothing globex tried changed acme's thread: only the completion was added.
    const after = await acme.turns.getThread({ threadId });
    t.is(after.thread!.lastSeq, before.thread!.lastSeq + 1n);
    t.is(globexFeed.assignments.length, 0, "the globex agent never got acme's turn");
    await globexFeed.stop();
    await acmeFeed.stop();
  });

  test.serial(`${tier}: an every-tenant agent runs both tenants' turns; an every-tenant admin sees both; writes land in the thread's tenant`, async (t) => {
    const server = servers.get(tier)!;
    const agent = startTestAgent(as(server, "anyAgent").transport, "any-agent", hold, 4);
    const a = await as(server, "acmeClient").turns.submitTurn({ input: { text: "a" } });
    const g = await as(server, "globexClient").turns.submitTurn({ input: { text: "g" } });
    const got = await agent.waitForAssignments(2);
    t.deepEqual(new Set(got.map((x) => x.turn!.turnId)), new Set([a.turn!.turnId, g.turn!.turnId]));
    for (const x of got) {
      // The agent of every tenant appends as the thread's owner.
      const res = await as(server, "anyAgent").events.appendEvents({
        threadId: x.turn!.threadId,
        turnId: x.turn!.turnId,
        leaseId: x.leaseId,
        events: [{ type: "message.delta", payload: { delta: "hi" } }],
      });
      t.is(res.events[0].tenantId, x.thread!.tenantId);
      await agent.agents.completeTurn({ turnId: x.turn!.turnId, leaseId: x.leaseId });
    }
    const admin = as(server, "admin");
    t.is((await admin.turns.getThread({ threadId: a.thread!.threadId })).thread!.tenantId, "acme");
    t.is((await admin.turns.getThread({ threadId: g.thread!.threadId })).thread!.tenantId, "globex");
    // A tenant's own admin stays in its tenant.
    t.is((await refusal(() => as(server, "globexAdmin").turns.getThread({ threadId: a.thread!.threadId }))).code, Code.NotFound);
    // An admin of every tenant creates threads in the default tenant.
    t.is((await admin.turns.createThread({})).thread!.tenantId, "default");
    await agent.stop();
  });
}
