// The TypeScript client's writes are retry-safe: ids are chosen once, before
// the first try, so a retry after UNAVAILABLE or a timeout asks for the same
// append (the server answers with the original seqs); other errors are not retried.
import test from "ava";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { EventService, type AppendEventsRequest } from "../../gen/eventide/v1/event_service_pb.js";
import { type SubmitTurnRequest, TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { createEventideClient } from "../../clients/typescript/src/index.js";

const threadId = "01JABCDEFGHJKMNPQRSTVWXYZ0";
const fast = { backoff: { initialMs: 1, maxMs: 5 } };

function failingFirst(failures: ConnectError[]) {
  const appends: AppendEventsRequest[] = [];
  const submits: SubmitTurnRequest[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(EventService, {
      appendEvents(req) {
        appends.push(req);
        const failure = failures[appends.length - 1];
        if (failure) throw failure;
        return { firstSeq: 7n, lastSeq: BigInt(6 + req.events.length) };
      },
    });
    service(TurnService, {
      submitTurn(req) {
        submits.push(req);
        const failure = failures[submits.length - 1];
        if (failure) throw failure;
        return {};
      },
    });
  });
  return { client: createEventideClient(transport, fast), appends, submits };
}

test("append fills in event ids once: the retries after UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED (a connection reset) and a refused stream send the same ids", async (t) => {
  const { client, appends } = failingFirst([new ConnectError("down", Code.Unavailable), new ConnectError("slow", Code.DeadlineExceeded), new ConnectError("read ECONNRESET", Code.Aborted), new ConnectError("Stream closed with error code NGHTTP2_REFUSED_STREAM", Code.Internal)]);
  const res = await client.append(threadId, [{ type: "a" }, { type: "b", eventId: "mine" }], { expectedLastSeq: 6, turnId: threadId, leaseId: "l" });
  t.is(res.firstSeq, 7n);
  t.is(appends.length, 5);
  const ids = appends.map((a) => a.events.map((e) => e.eventId));
  t.regex(ids[0][0], /^[0-9A-HJKMNP-TV-Z]{26}$/, "a ULID");
  t.is(ids[0][1], "mine", "an id the caller chose is kept");
  t.deepEqual(ids[1], ids[0]);
  t.deepEqual(ids[2], ids[0]);
  t.deepEqual(ids[3], ids[0]);
  t.deepEqual(ids[4], ids[0]);
  t.like(appends[4], { expectedLastSeq: 6n, turnId: threadId, leaseId: "l" });
});

for (const [code, message] of [
  [Code.FailedPrecondition, "stale expected seq"],
  [Code.Internal, "boom"],
  [Code.ResourceExhausted, "rate limited"],
] as const) {
  test(`append does not retry ${Code[code]} (${message})`, async (t) => {
    const { client, appends } = failingFirst([new ConnectError(message, code)]);
    const err = await t.throwsAsync(client.append(threadId, [{ type: "a" }], { expectedLastSeq: 1 }));
    t.is(ConnectError.from(err).code, code);
    t.is(appends.length, 1);
  });
}

test("submitTurn fills in an idempotency key once and keeps it across retries", async (t) => {
  const { client, submits } = failingFirst([new ConnectError("down", Code.Unavailable)]);
  await client.submitTurn({ input: { text: "hi" } });
  t.is(submits.length, 2);
  t.truthy(submits[0].idempotencyKey);
  t.is(submits[1].idempotencyKey, submits[0].idempotencyKey);
  const { client: c2, submits: s2 } = failingFirst([]);
  await c2.submitTurn({ input: {}, idempotencyKey: "k-1" });
  t.is(s2[0].idempotencyKey, "k-1");
});
