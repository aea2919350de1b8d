// GET /threads/{id}/events/stream: Server-Sent Events over TailEvents. Each
// event is `id: <seq>`, `event: <type>`, `data: <envelope JSON>`, so a plain
// EventSource resumes after a disconnect from Last-Event-ID with no gap and no
// duplicate. Idle streams get comment heartbeats. With turn filters the stream
// sends `data: [DONE]` and closes once every requested turn has ended.
import type { Client } from "@connectrpc/connect";
import type { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import type { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { toEnvelope } from "./agent-events.js";
import { BadRequest } from "./http-replies.js";
import type { CallOptions } from "./original-api.js";
import type { HttpRequest, HttpResponse } from "./routes.js";

export interface StreamRequest {
  threadId: string;
  afterSeq: bigint;
  /** Only these turns' events; empty = every event. */
  turnIds: string[];
}

const turnEndTypes = new Set(["turn.completed", "turn.failed", "turn.cancelled", "turn.dead_lettered"]);
const endedStatuses = new Set([TurnStatus.COMPLETED, TurnStatus.FAILED, TurnStatus.CANCELLED, TurnStatus.DEAD_LETTERED]);
const maxTurnFilters = 32;

export async function streamEvents(
  clients: { events: Client<typeof EventService>; turns: Client<typeof TurnService> },
  request: StreamRequest,
  req: HttpRequest,
  response: HttpResponse,
  callOptions: (signal: AbortSignal) => CallOptions,
): Promise<void> {
  // http and http2 responses differ in their overloads; a stream only writes text.
  const res = response as HttpResponse & { write(chunk: string): boolean };
  // The connection's server runs this only while the client is there (see Connections.track),
  // so a listener attached now hears it leave.
  const stop = new AbortController();
  const onClose = () => stop.abort();
  res.on("close", onClose);
  try {
    const call = callOptions(stop.signal);
    const turnFilter = new Set(request.turnIds);
    if (turnFilter.size > maxTurnFilters) throw new BadRequest(`at most ${maxTurnFilters} turn_id filters`);
    // A turn that had ended before the stream began ended at or before the
    // history's end: if its end is not in the history after after_seq, the
    // client saw it already.
    const endedBefore = new Set<string>();
    for (const turnId of turnFilter) {
      const { turn } = await clients.turns.getTurn({ turnId }, call);
      if (turn!.threadId !== request.threadId) throw new BadRequest(`turn ${turnId} is not in thread ${request.threadId}`);
      if (endedStatuses.has(turn!.status)) endedBefore.add(turnId);
    }
    const pending = new Set(turnFilter);
    const tail = clients.events
      .tailEvents(
        {
          threadId: request.threadId,
          afterSeq: request.afterSeq,
          follow: true,
          // History in batches: one write (and one message through the in-process transport) for many events.
          maxEventsPerResponse: 200,
          // One turn is filtered by the server; several here.
          turnId: turnFilter.size === 1 ? [...turnFilter][0] : "",
        },
        call,
      )
      [Symbol.asyncIterator]();
    // The first item decides between an error status and a 200 stream.
    let next = await tail.next();
    startStream(req, res);
    for (; !next.done; next = await tail.next()) {
      const { item } = next.value;
      if (item.case === "events") {
        let frames = "";
        for (const event of item.value.events) {
          if (turnFilter.size > 0 && !turnFilter.has(event.turnId)) continue;
          frames += `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(toEnvelope(event))}\n\n`;
          if (turnEndTypes.has(event.type)) pending.delete(event.turnId);
          // The last awaited turn has ended: nothing after its end goes out.
          if (turnFilter.size > 0 && pending.size === 0) break;
        }
        if (frames) res.write(frames);
      } else if (item.case === "caughtUp") {
        for (const turnId of endedBefore) pending.delete(turnId);
        res.write(`: caught up at seq ${item.value.lastSeq}\n\n`);
      } else if (item.case === "heartbeat") {
        res.write(": heartbeat\n\n");
      }
      if (turnFilter.size > 0 && pending.size === 0) {
        res.write("data: [DONE]\n\n");
        break;
      }
    }
    res.end();
  } catch (err) {
    if (stop.signal.aborted) return;
    throw err;
  } finally {
    res.off("close", onClose);
    // Ends the in-process call: its stream ends with it (see observeStream), giving back the tail and the slot.
    stop.abort();
  }
}

function startStream(req: HttpRequest, res: HttpResponse & { write(chunk: string): boolean }): void {
  res.statusCode = 200;
  res.setHeader("content-type", "text/event-stream; charset=utf-8");
  res.setHeader("cache-control", "no-cache, no-transform");
  // Proxies such as nginx must not buffer the stream.
  res.setHeader("x-accel-buffering", "no");
  // HTTP/2 forbids connection-specific headers.
  if (req.httpVersionMajor < 2) res.setHeader("connection", "keep-alive");
  // Tells EventSource how long to wait before reconnecting.
  res.write("retry: 1000\n\n");
}
