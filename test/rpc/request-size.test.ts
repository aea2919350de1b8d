// The request size cap (EVENTIDE_MAX_REQUEST_BYTES): a larger request is refused with
// RESOURCE_EXHAUSTED before it is decoded, on every protocol, compressed or not, and
// writes nothing. Serial: the write spy sees every write to the file's servers.
import anyTest from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { type Protocol, protocols, serverPerTier, tierKinds, type TestServer } from "../support/server.js";
import { spyOnWrites } from "../support/write-spy.js";

const test = anyTest.serial;
const maxRequestBytes = 4096;
const servers = serverPerTier(anyTest, { EVENTIDE_MAX_REQUEST_BYTES: String(maxRequestBytes) });
const oversize = /larger than configured readMaxBytes 4096/;

async function refusedWritingNothing(t: import("ava").ExecutionContext, server: TestServer, call: (threadId: string) => Promise<unknown>) {
  const { thread } = await server.turns().createThread({});
  const threadId = thread!.threadId;
  const spy = spyOnWrites(server.tiers);
  try {
    const err = ConnectError.from(await t.throwsAsync(call(threadId)));
    t.is(Code[err.code], Code[Code.ResourceExhausted], err.message);
    t.regex(err.rawMessage, oversize);
    t.deepEqual(spy.writes, []);
    t.is((await server.turns().getThread({ threadId })).thread!.lastSeq, 1n);
  } finally {
    spy.restore();
  }
}

for (const tier of tierKinds) {
  for (const protocol of protocols) {
    test(`${tier}/${protocol}: an append over the cap → RESOURCE_EXHAUSTED, nothing written; one under it is appended`, async (t) => {
      const server = servers.get(tier)!;
      const events = server.events(protocol);
      await refusedWritingNothing(t, server, (threadId) =>
        events.appendEvents({ threadId, events: [{ type: "custom", payload: { text: "x".repeat(maxRequestBytes) } }] }),
      );
      const { thread } = await server.turns().createThread({});
      const res = await events.appendEvents({ threadId: thread!.threadId, events: [{ type: "custom", payload: { text: "x".repeat(maxRequestBytes - 200) } }] });
      t.is(res.lastSeq, 2n);
    });
  }

  test(`${tier}: a turn submission over the cap creates no thread`, async (t) => {
    const server = servers.get(tier)!;
    const spy = spyOnWrites(server.tiers);
    try {
      const err = ConnectError.from(await t.throwsAsync(server.turns().submitTurn({ input: { text: "x".repeat(maxRequestBytes) } })));
      t.is(Code[err.code], Code[Code.ResourceExhausted], err.message);
      t.deepEqual(spy.writes, []);
    } finally {
      spy.restore();
    }
  });

  test(`${tier}: a server-stream request over the cap → RESOURCE_EXHAUSTED`, async (t) => {
    const server = servers.get(tier)!;
    await refusedWritingNothing(t, server, async (threadId) => {
      for await (const _ of server.events().tailEvents({ threadId, types: Array.from({ length: 40 }, () => "m".repeat(128)) }));
    });
  });

  for (const protocol of protocols) {
    test(`${tier}/${protocol}: a body far over the cap → RESOURCE_EXHAUSTED, and the connection still serves`, async (t) => {
      const server = servers.get(tier)!;
      // A client of its own: what this request does to its connection stays here.
      const events = createClient(EventService, transportFor(protocol, server.baseUrl));
      const { thread } = await server.turns().createThread({});
      const threadId = thread!.threadId;
      const big = Array.from({ length: 60 }, () => ({ type: "custom", payload: { text: "x".repeat(200_000) } }));
      const err = ConnectError.from(await t.throwsAsync(events.appendEvents({ threadId, events: big }, { timeoutMs: 20_000 })));
      t.is(Code[err.code], Code[Code.ResourceExhausted], err.message);
      t.is((await events.appendEvents({ threadId, events: [{ type: "custom" }] }, { timeoutMs: 5_000 })).lastSeq, 2n);
    });
  }

  test(`${tier}: a small gzip body that inflates past the cap → RESOURCE_EXHAUSTED`, async (t) => {
    const server = servers.get(tier)!;
    const gzip = createClient(
      EventService,
      createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2", sendCompression: compressionGzip, compressMinBytes: 0 }),
    );
    await refusedWritingNothing(t, server, (threadId) =>
      gzip.appendEvents({ threadId, events: [{ type: "custom", payload: { text: "x".repeat(1024 * 1024) } }] }),
    );
  });
}

/**
 * Node's HTTP/2 client keeps what it could not send yet in its session's memory, 10 MB
 * by default (`maxSessionMemory`): a larger request that the server refuses without
 * reading it all fails in the client with NGHTTP2_ENHANCE_YOUR_CALM, and so does every
 * later call on that session. Clients that send requests over 10 MB raise it.
 */
function transportFor(protocol: Protocol, baseUrl: string) {
  const nodeOptions = { maxSessionMemory: 64 };
  if (protocol === "grpc") return createGrpcTransport({ baseUrl, nodeOptions });
  if (protocol === "grpc-web") return createGrpcWebTransport({ baseUrl, httpVersion: "2", nodeOptions });
  if (protocol === "connect") return createConnectTransport({ baseUrl, httpVersion: "2", nodeOptions });
  return createConnectTransport({ baseUrl, httpVersion: "1.1" });
}
