// A polyglot agent: plain gRPC with @grpc/grpc-js + @grpc/proto-loader, loading
// the .proto files at run time like an agent written in any other language
// would, and no Connect or generated code, drives a whole turn. Connect is only
// the "user" side that submits the turn and checks the outcome.
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import test from "ava";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { tierKinds, serverPerTier } from "../support/server.js";

// proto-loader finds google/protobuf/{struct,timestamp}.proto itself (protobufjs ships them);
// buf/validate/validate.proto (the request constraints) is vendored under proto/vendor.
const definition = protoLoader.loadSync(["eventide/v1/agent_service.proto", "eventide/v1/event_service.proto"], {
  includeDirs: [fileURLToPath(new URL("../../proto", import.meta.url)), fileURLToPath(new URL("../../proto/vendor", import.meta.url))],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const v1 = (grpc.loadPackageDefinition(definition).eventide as grpc.GrpcObject).v1 as grpc.GrpcObject;
const AgentService = v1.AgentService as grpc.ServiceClientConstructor;
const EventService = v1.EventService as grpc.ServiceClientConstructor;

// What proto-loader hands back (with the options above): plain objects, int64 as
// strings, enums as their names, Struct in its wire shape, oneofs named in `item`.
interface Value {
  stringValue?: string;
  numberValue?: number;
}
interface Struct {
  fields: Record<string, Value>;
}
interface Turn {
  turnId: string;
  threadId: string;
  status: string;
  input: Struct | null;
  output: Struct | null;
  attempt: number;
  agentId: string;
}
interface Timestamp {
  seconds: string;
  nanos: number;
}
interface Assignment {
  turn: Turn;
  thread: { threadId: string };
  leaseId: string;
  leaseExpiresAt: Timestamp | null;
  attempt: number;
}
interface ReceiveTurnsResponse {
  item: "assignment" | "cancellation";
  assignment?: Assignment;
}

type UnaryMethod = (req: object, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

/** One unary call by its proto method name, as a promise. */
function unary<T>(client: grpc.Client, method: string, req: object): Promise<T> {
  const fn = (client as unknown as Record<string, UnaryMethod>)[method];
  return new Promise((resolve, reject) => {
    fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res as T)));
  });
}

const ms = (ts: Timestamp | null) => Number(ts!.seconds) * 1000 + ts!.nanos / 1e6;

const servers = serverPerTier(test);

for (const tier of tierKinds) {
  test(`${tier}: a grpc-js agent receives, streams, renews and completes a turn; appends without its lease are fenced`, async (t) => {
    const server = servers.get(tier)!;
    const target = `127.0.0.1:${server.port}`;
    const agents = new AgentService(target, grpc.credentials.createInsecure());
    const events = new EventService(target, grpc.credentials.createInsecure());
    const agentId = `polyglot-${tier}`;

    // Open the work feed first; the first assignment is the turn submitted below
    // (this file's servers have no other agent).
    const feed = agents.ReceiveTurns({ agentId, maxInFlight: 1 }) as grpc.ClientReadableStream<ReceiveTurnsResponse>;
    let feedError: Error | undefined;
    const assigned = new Promise<Assignment>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no assignment within 15s")), 15_000);
      feed.on("data", (res: ReceiveTurnsResponse) => {
        if (res.item !== "assignment") return;
        clearTimeout(timer);
        resolve(res.assignment!);
      });
      // Our own cancel() at the end surfaces as CANCELLED: not a failure.
      feed.on("error", (err: grpc.ServiceError) => {
        if (err.code !== grpc.status.CANCELLED) feedError = err;
        clearTimeout(timer);
        reject(err);
      });
    });
    assigned.catch(() => {}); // awaited below; avoid an unhandled rejection after cancel()

    try {
      const submitted = await server.turns().submitTurn({ input: { text: "hello polyglot" } });
      const turnId = submitted.turn!.turnId;
      const threadId = submitted.thread!.threadId;

      const a = await assigned;
      t.is(a.turn.turnId, turnId);
      t.is(a.thread.threadId, threadId);
      t.is(a.turn.status, "TURN_STATUS_RUNNING");
      t.is(a.turn.agentId, agentId);
      t.is(a.attempt, 1);
      t.truthy(a.leaseId);
      t.true(ms(a.leaseExpiresAt) > Date.now(), "the lease is live when it arrives");
      // The user's input arrives as a Struct in its wire shape.
      t.is(a.turn.input!.fields.text.stringValue, "hello polyglot");

      // Fencing holds for plain gRPC too: no lease_id on a running turn is
      // FAILED_PRECONDITION, and nothing is written.
      const lastSeqBefore = (await server.turns().getThread({ threadId })).thread!.lastSeq;
      const fenced = await t.throwsAsync(
        unary(events, "AppendEvents", { threadId, turnId, events: [{ type: "message.delta", payload: { fields: { delta: { stringValue: "zombie" } } } }] }),
      );
      t.is((fenced as grpc.ServiceError).code, grpc.status.FAILED_PRECONDITION);
      t.is((await server.turns().getThread({ threadId })).thread!.lastSeq, lastSeqBefore, "the fenced append wrote nothing");

      // Stream two deltas under the lease: Struct payloads go in the wire shape.
      const deltas = ["hi", " polyglot"];
      const appended = await unary<{ firstSeq: string; lastSeq: string }>(events, "AppendEvents", {
        threadId,
        turnId,
        leaseId: a.leaseId,
        events: deltas.map((delta) => ({ type: "message.delta", payload: { fields: { message_id: { stringValue: "m1" }, delta: { stringValue: delta } } } })),
      });
      // thread.created 1, turn.submitted 2, turn.started 3: the deltas are 4 and 5 (int64 as strings).
      t.deepEqual([appended.firstSeq, appended.lastSeq], ["4", "5"]);

      const renewed = await unary<{ leaseExpiresAt: Timestamp }>(agents, "RenewLease", { leaseId: a.leaseId });
      t.true(ms(renewed.leaseExpiresAt) >= ms(a.leaseExpiresAt), "renewing does not shorten the lease");

      // Complete before cancelling the feed: a dropped feed requeues the turns it holds.
      const completed = await unary<{ turn: Turn }>(agents, "CompleteTurn", {
        turnId,
        leaseId: a.leaseId,
        output: { fields: { text: { stringValue: "hi polyglot" }, tokens: { numberValue: 2 } } },
      });
      t.is(completed.turn.status, "TURN_STATUS_COMPLETED");
      t.is(completed.turn.output!.fields.text.stringValue, "hi polyglot");

      // The user's side (Connect) sees the same outcome, with the Struct as JSON.
      const got = await server.turns().getTurn({ turnId });
      t.is(got.turn!.status, TurnStatus.COMPLETED);
      t.deepEqual(got.turn!.output, { text: "hi polyglot", tokens: 2 });

      const log = [];
      for await (const res of server.events().tailEvents({ threadId, afterSeq: 0n, follow: false })) {
        if (res.item.case === "event") log.push(res.item.value);
      }
      t.deepEqual(
        log.map((e) => e.type),
        ["thread.created", "turn.submitted", "turn.started", "message.delta", "message.delta", "turn.completed"],
      );
      t.deepEqual(log.map((e) => e.seq), [1n, 2n, 3n, 4n, 5n, 6n], "seqs are gapless");
      t.deepEqual(log.filter((e) => e.type === "message.delta").map((e) => e.payload), deltas.map((delta) => ({ message_id: "m1", delta })));
      t.true(log.slice(2).every((e) => e.turnId === turnId));
    } finally {
      feed.cancel();
      agents.close();
      events.close();
    }
    t.is(feedError, undefined, "the feed ended only by our cancel");
  });
}
