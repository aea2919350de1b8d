// The Connect floor: a bare Connect server that answers the RPCs the append,
// tail and replay scenarios call (CreateThread, GetThread, AppendEvents,
// TailEvents, Health.Check) from a few Maps, with no storage, validation,
// interceptors or logs. Each event is encoded once, when appended, and kept:
// a tail sends those bytes as they are (history in batches when the request
// asks for them; live events always alone). The same scenarios run against
// it (`npm run bench -- --floor`) beside the node:http2 and grpc-js floors
// (bench/floor-http2.ts, floor-grpc-js.ts), so the gap between them is
// Connect's own cost per call and per delivered event.
// Run as a child process: `node --import tsx bench/floor-server.ts` with PORT.
import { createServer } from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { AppendEventsResponseSchema, EventService, type TailEventsResponse, TailEventsResponseSchema } from "../gen/eventide/v1/event_service_pb.js";
import { EventSchema } from "../gen/eventide/v1/resources_pb.js";
import { TurnService } from "../gen/eventide/v1/turn_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
// eventide's id source: the ulid package's default reads the random source a byte at a time (~85 µs an id).
import { newId } from "../server/domain/ids.js";

/** Per thread: every event as a ready TailEventsResponse (index seq - 1), and the pushers of its open tails. */
interface FloorThread {
  responses: TailEventsResponse[];
  tails: Set<(response: TailEventsResponse) => void>;
}

const threads = new Map<string, FloorThread>();

function threadOf(threadId: string): FloorThread {
  const thread = threads.get(threadId);
  if (!thread) throw new ConnectError(`thread ${threadId} not found`, Code.NotFound);
  return thread;
}

const handler = connectNodeAdapter({
  routes(router) {
    router.service(Health, {
      check: () => ({ status: ServingStatus.SERVING }),
    });
    router.service(TurnService, {
      createThread() {
        const threadId = newId();
        const created = create(EventSchema, { eventId: newId(), threadId, seq: 1n, type: "thread.created", createdAt: timestampNow() });
        threads.set(threadId, { responses: [preEncoded(toBinary(EventSchema, created))], tails: new Set() });
        return { thread: { threadId, lastSeq: 1n } };
      },
      getThread(req) {
        return { thread: { threadId: req.threadId, lastSeq: BigInt(threadOf(req.threadId).responses.length) } };
      },
    });
    router.service(EventService, {
      appendEvents(req) {
        const thread = threadOf(req.threadId);
        const createdAt = timestampNow();
        const events = req.events.map((input, i) =>
          create(EventSchema, {
            eventId: input.eventId || newId(),
            threadId: req.threadId,
            seq: BigInt(thread.responses.length + 1 + i),
            type: input.type,
            payload: input.payload,
            createdAt,
            level: "info",
          }),
        );
        // One encoding per event serves the echo and every tail (as eventide's pre-encoded responses do).
        const responses = events.map((event) => preEncoded(toBinary(EventSchema, event)));
        for (const response of responses) {
          thread.responses.push(response);
          for (const push of thread.tails) push(response);
        }
        const echo = create(AppendEventsResponseSchema, { firstSeq: events[0].seq, lastSeq: events[events.length - 1].seq });
        // The echo's field 3 holds the same length-prefixed bytes as the tails' field 1.
        echo.$unknown = responses.map((r) => ({ ...r.$unknown![0], no: 3 }));
        return echo;
      },
      async *tailEvents(req, ctx): AsyncGenerator<TailEventsResponse> {
        const thread = threadOf(req.threadId);
        const pending: TailEventsResponse[] = [];
        let wake: (() => void) | undefined;
        const push = (response: TailEventsResponse) => {
          pending.push(response);
          wake?.();
        };
        // History is what the thread holds now; what is appended from here on is pushed.
        const history = thread.responses.length;
        thread.tails.add(push);
        ctx.signal.addEventListener("abort", () => wake?.(), { once: true });
        try {
          const perResponse = req.maxEventsPerResponse;
          for (let seq = Number(req.afterSeq) + 1; seq <= history && !ctx.signal.aborted; seq += Math.max(1, perResponse)) {
            yield perResponse === 0 ? thread.responses[seq - 1] : batchOf(thread.responses.slice(seq - 1, Math.min(history, seq - 1 + perResponse)));
          }
          yield create(TailEventsResponseSchema, { item: { case: "caughtUp", value: { lastSeq: BigInt(history) } } });
          while (req.follow && !ctx.signal.aborted) {
            if (pending.length === 0) await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            yield* pending.splice(0);
          }
        } finally {
          thread.tails.delete(push);
        }
      },
    });
  },
});

/** A TailEventsResponse whose `event` field (1) is the encoded Event, written as it is by toBinary. */
function preEncoded(event: Uint8Array): TailEventsResponse {
  const response = create(TailEventsResponseSchema);
  response.$unknown = [{ no: 1, wireType: WireType.LengthDelimited, data: delimited(event) }];
  return response;
}

/** One TailEventsResponse carrying the responses' events as an EventBatch (field 4), written as it is by toBinary. */
function batchOf(responses: TailEventsResponse[]): TailEventsResponse {
  const batch = new BinaryWriter();
  for (const r of responses) batch.tag(1, WireType.LengthDelimited).raw(r.$unknown![0].data);
  const response = create(TailEventsResponseSchema);
  response.$unknown = [{ no: 4, wireType: WireType.LengthDelimited, data: delimited(batch.finish()) }];
  return response;
}

/** The bytes with their length in front, as an unknown length-delimited field holds them. */
function delimited(data: Uint8Array): Uint8Array {
  return new BinaryWriter().bytes(data).finish();
}

const port = Number(process.env.PORT ?? 8080);
createServer(handler).listen(port, process.env.HOST ?? "127.0.0.1", () => {
  process.stdout.write(`floor server on ${port}\n`);
});
process.once("SIGTERM", () => process.exit(0));
