// The original eventide's HTTP API, so its agents, SDKs and pages keep working:
//   POST /events:append                  {"event": envelope} → {event_id, seq, duplicated}
//   GET  /threads/{id}                   the thread
//   GET  /threads/{id}/events?from_seq=N&limit=M   events with seq > N, from every tier
//   GET  /threads/{id}/archives          the thread's cold-tier archives
//   GET  /threads/{id}/events/stream     Server-Sent Events (see sse.ts)
// Each route calls the same RPCs in-process, so keys, roles, tenants, limits,
// validation, logs and metrics are exactly those of the RPC API.
import { toJson } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { ArchiveSchema, ArchiveService } from "../../gen/eventide/v1/archive_service_pb.js";
import { EventService } from "../../gen/eventide/v1/event_service_pb.js";
import { ThreadSchema } from "../../gen/eventide/v1/resources_pb.js";
import { TurnService } from "../../gen/eventide/v1/turn_service_pb.js";
import { countAuthorizationHeaders, duplicateAuthorization } from "../auth.js";
import { strictUtf8 } from "../wire/json-requests.js";
import { protoKeyIn, protoKeyRefused } from "../wire/proto-keys.js";
import { fromEnvelope, toEnvelope } from "./agent-events.js";
import { BadRequest, BodyTooLarge, errorBody, sendError, sendJson } from "./http-replies.js";
import type { HttpRequest, HttpResponse, HttpRoute } from "./routes.js";
import { streamEvents } from "./sse.js";

export interface OriginalApiOptions {
  /** The RPC services, in-process (createRouterTransport with the server's interceptors). */
  transport: Transport;
  maxBodyBytes: number;
}

const maxEventsPerPage = 1_000;

export function originalApiRoutes(opts: OriginalApiOptions): HttpRoute[] {
  const turns = createClient(TurnService, opts.transport);
  const events = createClient(EventService, opts.transport);
  const archives = createClient(ArchiveService, opts.transport);

  return [
    {
      method: "POST",
      path: /^\/events:append$/,
      async handle(req, res, _params, url) {
        await answer(res, async () => {
          const append = fromEnvelope(await readJsonBody(req, opts.maxBodyBytes));
          const leaseId = header(req, "x-eventide-lease-id");
          const appended = await events.appendEvents(
            { threadId: append.threadId, turnId: append.turnId, leaseId, events: [append.input] },
            callOptions(req, url),
          );
          const [event] = appended.events;
          return { event_id: event.eventId, seq: Number(event.seq), duplicated: appended.duplicate };
        });
      },
    },
    {
      method: "GET",
      path: /^\/threads\/(?<threadId>[^/]+)$/,
      async handle(req, res, { threadId }, url) {
        await answer(res, async () => {
          const { thread } = await turns.getThread({ threadId }, callOptions(req, url));
          return toJson(ThreadSchema, thread!, { useProtoFieldName: true });
        });
      },
    },
    {
      method: "GET",
      path: /^\/threads\/(?<threadId>[^/]+)\/events$/,
      async handle(req, res, { threadId }, url) {
        await answer(res, async () => {
          const fromSeq = seqParam(url, "from_seq");
          const limit = intParam(url, "limit", 100, 1, maxEventsPerPage);
          const page = await readPage({ events, turns }, threadId, fromSeq, limit, callOptions(req, url));
          return {
            events: page.map(toEnvelope),
            // Where the next page starts; absent on the last page.
            next_from_seq: page.length === limit ? Number(page[page.length - 1].seq) : undefined,
          };
        });
      },
    },
    {
      method: "GET",
      path: /^\/threads\/(?<threadId>[^/]+)\/archives$/,
      async handle(req, res, { threadId }, url) {
        await answer(res, async () => {
          const listed = await archives.listArchives({ threadId }, callOptions(req, url));
          return { archives: listed.archives.map((a) => toJson(ArchiveSchema, a, { useProtoFieldName: true })) };
        });
      },
    },
    {
      method: "GET",
      path: /^\/threads\/(?<threadId>[^/]+)\/events\/stream$/,
      async handle(req, res, { threadId }, url) {
        try {
          const afterSeq = resumeSeq(req, url);
          const turnIds = url.searchParams.getAll("turn_id").flatMap((v) => v.split(",")).filter(Boolean);
          // EventSource cannot set headers: this route alone also takes the key as ?access_token=.
          await streamEvents({ events, turns }, { threadId, afterSeq, turnIds }, req, res, (signal) => callOptions(req, url, signal, { tokenInQuery: true }));
        } catch (err) {
          if (!res.headersSent) sendError(res, err);
          // Mid-stream (DATA_LOSS at a hole, the thread deleted): say why in a last frame rather than just stop.
          else res.end(`event: error\ndata: ${JSON.stringify(errorBody(err))}\n\n`);
        }
      },
    },
  ];
}

/**
 * The events of a thread after `fromSeq`, stitched from every tier: ListEvents
 * of the thread (a bounded read, unlike a tail that reads ahead to the end).
 * A `from_seq` past the thread's end is OUT_OF_RANGE, as for a tail.
 */
async function readPage(
  clients: { events: Client<typeof EventService>; turns: Client<typeof TurnService> },
  threadId: string,
  fromSeq: bigint,
  limit: number,
  call: CallOptions,
) {
  const { events } = await clients.events.listEvents({ threadId, afterSeq: fromSeq, pageSize: limit }, call);
  if (events.length === 0 && fromSeq > 0n) {
    const { thread } = await clients.turns.getThread({ threadId }, call);
    if (fromSeq > thread!.lastSeq) throw new ConnectError(`from_seq ${fromSeq} is beyond the thread's last seq ${thread!.lastSeq}`, Code.OutOfRange);
  }
  return events;
}

export interface CallOptions {
  headers: Headers;
  signal?: AbortSignal;
}

/**
 * Forwards the caller's credentials: the Authorization header (one: two are refused,
 * as on the RPC port), or with `tokenInQuery` (the SSE stream, for EventSource, which
 * cannot set headers) an `access_token` query parameter. Nowhere else: a key in a URL
 * ends up in access logs.
 */
export function callOptions(req: HttpRequest, url: URL, signal?: AbortSignal, opts: { tokenInQuery?: boolean } = {}): CallOptions {
  if (countAuthorizationHeaders(req.rawHeaders) > 1) throw new ConnectError(duplicateAuthorization, Code.Unauthenticated);
  const headers = new Headers();
  const authorization = header(req, "authorization");
  const token = opts.tokenInQuery ? url.searchParams.get("access_token") : null;
  if (authorization) headers.set("authorization", authorization);
  else if (token) headers.set("authorization", `Bearer ${token}`);
  const requestId = header(req, "x-request-id");
  if (requestId) headers.set("x-request-id", requestId);
  return { headers, signal };
}

function header(req: HttpRequest, name: string): string {
  const value = req.headers[name];
  return typeof value === "string" ? value : "";
}

/** Runs `produce` and answers its value as JSON, or the error with its HTTP status. */
async function answer(res: HttpResponse, produce: () => Promise<unknown>): Promise<void> {
  try {
    sendJson(res, 200, await produce());
  } catch (err) {
    sendError(res, err);
  }
}

async function readJsonBody(req: HttpRequest, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new BodyTooLarge(`the request body is larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const text = strictUtf8(Buffer.concat(chunks));
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequest("the request body must be JSON");
  }
  // Refused as on the RPCs: a decoder would drop the key (see wire/proto-keys.ts).
  const path = protoKeyIn(body);
  if (path !== undefined) throw protoKeyRefused(path);
  return body;
}

/** Last-Event-ID (EventSource's reconnect) wins over ?after_seq=. */
function resumeSeq(req: HttpRequest, url: URL): bigint {
  const lastEventId = header(req, "last-event-id");
  if (lastEventId) return parseSeq("Last-Event-ID", lastEventId);
  return seqParam(url, "after_seq");
}

function seqParam(url: URL, name: string): bigint {
  const raw = url.searchParams.get(name);
  return raw === null || raw === "" ? 0n : parseSeq(name, raw);
}

function parseSeq(name: string, raw: string): bigint {
  if (!/^\d{1,16}$/.test(raw) || Number(raw) > Number.MAX_SAFE_INTEGER) throw new BadRequest(`${name} must be a seq (0 to 2^53-1), got ${JSON.stringify(raw)}`);
  return BigInt(raw);
}

function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new BadRequest(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return value;
}

