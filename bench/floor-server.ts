// The framework floor: a bare Connect server that answers the RPCs the append
// and tail scenarios call (CreateThread, GetThread, AppendEvents, TailEvents,
// Health.Check) from a few Maps, with no storage, validation, interceptors or
// logs. The same scenarios run against it (`npm run bench -- --floor`), so
// the gap between its figures and eventide's is eventide's own cost, and its
// figures are what Connect and Node's HTTP/2 alone reach on this machine.
// Run as a child process: `node --import tsx bench/floor-server.ts` with PORT.
import { createServer } from "node:http2";
import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ulid } from "ulid";
import { EventService, type TailEventsResponse, TailEventsResponseSchema } from "../gen/eventide/v1/event_service_pb.js";
import { type Event, EventSchema } from "../gen/eventide/v1/resources_pb.js";
import { TurnService } from "../gen/eventide/v1/turn_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";

/** Per thread: its last seq and the pushers of its open tails. */
interface FloorThread {
  lastSeq: number;
  tails: Set<(event: Event) => void>;
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
        const threadId = ulid();
        threads.set(threadId, { lastSeq: 1, tails: new Set() });
        return { thread: { threadId, lastSeq: 1n } };
      },
      getThread(req) {
        return { thread: { threadId: req.threadId, lastSeq: BigInt(threadOf(req.threadId).lastSeq) } };
      },
    });
    router.service(EventService, {
      appendEvents(req) {
        const thread = threadOf(req.threadId);
        const createdAt = timestampNow();
        const events = req.events.map((input) =>
          create(EventSchema, {
            eventId: input.eventId || ulid(),
            threadId: req.threadId,
            seq: BigInt(++thread.lastSeq),
            type: input.type,
            payload: input.payload,
            createdAt,
            level: "info",
          }),
        );
        for (const event of events) for (const push of thread.tails) push(event);
        return { firstSeq: events[0].seq, lastSeq: events[events.length - 1].seq, events };
      },
      async *tailEvents(req, ctx): AsyncGenerator<TailEventsResponse> {
        const thread = threadOf(req.threadId);
        // History is thread.created alone (appended events are not kept), so tails start at the end.
        const pending: Event[] = [];
        let wake: (() => void) | undefined;
        const push = (event: Event) => {
          pending.push(event);
          wake?.();
        };
        thread.tails.add(push);
        ctx.signal.addEventListener("abort", () => wake?.(), { once: true });
        try {
          if (req.afterSeq < 1n) {
            yield create(TailEventsResponseSchema, {
              item: { case: "event", value: { threadId: req.threadId, seq: 1n, type: "thread.created", createdAt: timestampNow() } },
            });
          }
          yield create(TailEventsResponseSchema, { item: { case: "caughtUp", value: { lastSeq: BigInt(thread.lastSeq) } } });
          while (!ctx.signal.aborted) {
            if (pending.length === 0) await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            for (const event of pending.splice(0)) yield create(TailEventsResponseSchema, { item: { case: "event", value: event } });
          }
        } finally {
          thread.tails.delete(push);
        }
      },
    });
  },
});

const port = Number(process.env.PORT ?? 8080);
createServer(handler).listen(port, process.env.HOST ?? "127.0.0.1", () => {
  process.stdout.write(`floor server on ${port}\n`);
});
process.once("SIGTERM", () => process.exit(0));
