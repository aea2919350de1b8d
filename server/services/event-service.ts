// EventService: append, tail, look up. Storage stays behind HotLog and EventReader.
import { create, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { timestampMs, timestampNow } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { newId } from "../domain/ids.js";
import type { EventInput } from "../../gen/eventide/v1/resources_pb.js";
import { AppendEventsResponseSchema, type EventService, type TailEventsRequest, type TailEventsResponse, TailEventsResponseSchema } from "../../gen/eventide/v1/event_service_pb.js";
import { anyTenant, callerOf } from "../auth.js";
import { InvalidInput, NotFound, OutOfRange } from "../domain/errors.js";
import type { NewEvent, StoredEvent, ThreadRecord } from "../domain/records.js";
import type { EventLog } from "../log/event-log.js";
import { liveWriterKey } from "../live/live-writer.js";
import type { LiveDelivery } from "../live/subscription.js";
import { tail, type TailItem } from "../reads/tail.js";
import { heartbeatFrame, liveFrames } from "./live-frames.js";
import { encodedEventsDelimited, encodeEventBatchesDelimited, encodeEventDelimited, encodeEventsDelimited, toEvent } from "./convert.js";
import { endingAtShutdown, type StreamShutdown } from "./shutdown.js";
import { ownedThread, tenantOfLookup, tenantOfWrite } from "./ownership.js";
import * as v from "./validation.js";

export interface EventServiceDeps {
  log: EventLog;
  heartbeatMs: number;
  tailBuffer: number;
  /** Aborts when the server shuts down: open tails end with UNAVAILABLE. */
  shutdown?: StreamShutdown;
}

export function eventService(deps: EventServiceDeps): Partial<ServiceImpl<typeof EventService>> {
  const { log } = deps;
  const idle = idleHeartbeats(log, deps.heartbeatMs);
  return {
    async appendEvents(req, ctx) {
      const threadId = v.requireUlid("thread_id", req.threadId);
      const turnId = v.optionalUlid("turn_id", req.turnId);
      const expectedLastSeq = req.expectedLastSeq === undefined ? undefined : v.seq("expected_last_seq", req.expectedLastSeq);
      const events = newEvents(req.events, turnId);
      const leaseId = v.maxChars("lease_id", req.leaseId, v.limits.leaseIdChars);
      if (leaseId && !turnId) throw new InvalidInput("lease_id needs the turn_id it holds");
      const tenantId = await tenantOfWrite(log, callerOf(ctx), threadId);
      const res = await log.append({ tenantId, threadId, turnId: turnId || undefined, leaseId: leaseId || undefined, expectedLastSeq, events });
      if (res.kind === "duplicate-turn") throw new Error("an event append cannot be a turn retry");
      const response = create(AppendEventsResponseSchema, {
        firstSeq: BigInt(res.events[0].seq),
        lastSeq: BigInt(res.events[res.events.length - 1].seq),
        duplicate: res.kind === "duplicate-events",
      });
      // The echo of a batch is most of the response's bytes and, reflectively encoded, of the call's
      // CPU: binary clients get the events written straight to their wire form (see binaryTailResponse).
      if (jsonCall(ctx)) response.events = res.events.map(toEvent);
      // Encoded already when this server's tails got the events as the append returned.
      else response.$unknown = encodedEventsDelimited(res.events).map((data) => lengthDelimited(appendEventsField, data));
      return response;
    },

    tailEvents(req, ctx) {
      return new TailResponses(() => openTail(req, ctx, deps, idle));
    },

    async getEvent(req, ctx) {
      const eventId = v.eventId("event_id", req.eventId);
      const tenantId = tenantOfLookup(callerOf(ctx), req.tenantId);
      // Looked up by (tenant, id): another tenant's id is not found the way an unknown one is.
      const event = tenantId === undefined ? undefined : await log.findEvent(tenantId, eventId);
      if (!event) throw new NotFound("event", eventId);
      return { event: toEvent(event) };
    },

    async listEvents(req, ctx) {
      const caller = callerOf(ctx);
      const threadId = v.optionalUlid("thread_id", req.threadId);
      if (threadId) await ownedThread(log, caller, threadId);
      // A one-tenant key sees only its tenant; an every-tenant key may name one (or see all).
      const tenantId = caller.tenantId === anyTenant ? req.tenantId || undefined : caller.tenantId;
      const page = await log.listEvents(
        {
          threadId: threadId || undefined,
          turnId: v.optionalUlid("turn_id", req.turnId) || undefined,
          types: v.typePrefixes("types", req.types),
          tenantId: threadId ? undefined : tenantId,
          createdAfter: req.createdAfter ? timestampMs(req.createdAfter) : undefined,
          createdBefore: req.createdBefore ? timestampMs(req.createdBefore) : undefined,
          afterSeq: v.seq("after_seq", req.afterSeq),
        },
        v.pageSize("page_size", req.pageSize, 100),
        req.pageToken,
      );
      return { events: page.items.map(toEvent), nextPageToken: page.nextPageToken };
    },
  };
}

/** A tail past its checks: its items, and how they become responses. */
interface OpenedTail {
  items: AsyncIterable<TailItem>;
  perResponse: number;
  json: boolean;
}

/** TailEvents' checks (request, ownership, after_seq), then the tail, ending at shutdown. */
async function openTail(req: TailEventsRequest, ctx: HandlerContext, deps: EventServiceDeps, idle: LiveDelivery["idle"]): Promise<OpenedTail> {
  const { log } = deps;
  const threadId = v.requireUlid("thread_id", req.threadId);
  const afterSeq = v.seq("after_seq", req.afterSeq);
  const types = v.typePrefixes("types", req.types);
  const turnId = v.optionalUlid("turn_id", req.turnId);
  const perResponse = v.eventsPerResponse("max_events_per_response", req.maxEventsPerResponse);
  const thread = await ownedThread(log, callerOf(ctx), threadId);
  if (afterSeq > thread.lastSeq) {
    throw new OutOfRange(`after_seq ${afterSeq} is beyond the thread's last seq ${thread.lastSeq}`);
  }
  // Binary clients (gRPC, gRPC-Web, Connect with protobuf) get each event pre-encoded;
  // JSON clients get the Event message, which Connect writes as JSON.
  const json = jsonCall(ctx);
  // A transport that takes live events as bytes (the wire path) gets them framed once for the thread's tails.
  const writer = json ? undefined : ctx.values.get(liveWriterKey);
  const delivery = writer && { writer, frames: liveFrames(perResponse, maxBatchBytes), idle };
  const items = endingAtShutdown(
    (signal) =>
      tail(
        { threadId, afterSeq, follow: req.follow, types, turnId },
        { reader: log, live: log.live, heartbeatMs: deps.heartbeatMs, bufferBound: deps.tailBuffer, delivery },
        signal,
      ),
    ctx.signal,
    deps.shutdown,
    "server shutting down; resume from your last seq elsewhere",
  );
  return { items, perResponse, json };
}

const done = { done: true, value: undefined } as const;

/**
 * TailEvents' responses: the tail's items, each as the responses it makes. An iterator object
 * rather than an async generator: a followed tail waits here for hours, and then holds these
 * fields, not a suspended frame that keeps the request, its context and the thread's record.
 */
class TailResponses implements AsyncIterableIterator<TailEventsResponse> {
  private items: AsyncIterator<TailItem> | undefined;
  private perResponse = 0;
  private json = false;
  /** The responses of the item being sent. */
  private current: Iterator<TailEventsResponse> | undefined;
  private ended = false;

  /** `opening` runs at the first pull, as a generator's body would: its errors are the stream's. */
  constructor(private opening: (() => Promise<OpenedTail>) | undefined) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<TailEventsResponse>> {
    if (this.current) {
      const r = this.current.next();
      if (!r.done) return Promise.resolve(r);
      this.current = undefined;
    }
    if (this.ended) return Promise.resolve(done);
    if (this.items) return this.items.next().then(this.took, this.failed);
    const opening = this.opening!;
    this.opening = undefined;
    return opening().then((tail) => this.opened(tail), this.failed);
  }

  async return(value?: unknown): Promise<IteratorResult<TailEventsResponse>> {
    this.ended = true;
    this.current = undefined;
    this.opening = undefined;
    await this.items?.return?.(value);
    return { done: true, value: value as TailEventsResponse };
  }

  async throw(err?: unknown): Promise<IteratorResult<TailEventsResponse>> {
    await this.return();
    throw err;
  }

  private opened(tail: OpenedTail): Promise<IteratorResult<TailEventsResponse>> {
    this.items = tail.items[Symbol.asyncIterator]();
    this.perResponse = tail.perResponse;
    this.json = tail.json;
    // Returned while it opened: the tail never starts.
    if (this.ended) return this.return();
    return this.next();
  }

  private readonly took = (r: IteratorResult<TailItem>): IteratorResult<TailEventsResponse> | Promise<IteratorResult<TailEventsResponse>> => {
    if (r.done) {
      this.ended = true;
      return done;
    }
    if (this.ended) return done;
    this.current = responsesOf(r.value, this.perResponse, this.json);
    return this.next();
  };

  private readonly failed = (err: unknown): never => {
    this.ended = true;
    throw err;
  };
}

/** The responses one tail item makes. */
function* responsesOf(item: TailItem, perResponse: number, json: boolean): Generator<TailEventsResponse> {
  const respond = json ? tailResponse : binaryTailResponse;
  if (item.kind === "live") {
    if (perResponse > 0) yield* liveBatches(item.events, perResponse, json);
    else for (const event of item.events) yield respond({ kind: "event", event });
  } else if (perResponse > 0 && item.kind === "events") yield* batchResponses(item.events, perResponse, json);
  else if (item.kind !== "events") yield respond(item);
  else if (json) for (const event of item.events) yield tailResponse({ kind: "event", event });
  // History is encoded a slice of a page at a time (and not cached: nobody else holds these objects).
  else {
    for (let i = 0; i < item.events.length; i += encodeSlice) {
      for (const data of encodeEventsDelimited(item.events.slice(i, i + encodeSlice))) yield eventFieldResponse(data);
    }
  }
}

function newEvents(inputs: EventInput[], turnId: string): NewEvent[] {
  if (inputs.length === 0 || inputs.length > v.limits.eventsPerBatch) {
    throw new InvalidInput(`events must hold 1 to ${v.limits.eventsPerBatch} events, got ${inputs.length}`);
  }
  const seen = new Set<string>();
  return inputs.map((e, i) => {
    const field = `events[${i}]`;
    const clientSuppliedId = e.eventId !== "";
    const eventId = clientSuppliedId ? v.eventId(`${field}.event_id`, e.eventId) : newId();
    if (seen.has(eventId)) throw new InvalidInput(`${field}.event_id ${JSON.stringify(eventId)} appears twice in the batch`);
    seen.add(eventId);
    const payload = v.jsonObjectWithText(`${field}.payload`, e.payload);
    return {
      eventId,
      clientSuppliedId,
      turnId,
      type: v.eventType(`${field}.type`, e.type),
      payload: payload.object,
      payloadJson: payload.json,
      metadata: v.metadata(`${field}.metadata`, e.metadata),
      schemaVersion: v.schemaVersion(`${field}.schema_version`, e.schemaVersion),
      level: v.level(`${field}.level`, e.level),
    };
  });
}

/** Events of a history page encoded together. */
const encodeSlice = 256;

/** A batch response's size bound (but for one larger event): well below gRPC's usual 4 MiB receive limit. */
const maxBatchBytes = 1024 * 1024;

/** Tail responses of kind `events`, each holding up to `perResponse` of the events (and about maxBatchBytes). */
function* batchResponses(events: StoredEvent[], perResponse: number, json: boolean): Generator<TailEventsResponse> {
  const batches = encodeEventBatchesDelimited(events, perResponse, maxBatchBytes);
  if (!json) {
    for (const { data } of batches) yield preEncodedResponse(tailEventsField, data);
    return;
  }
  // JSON drops pre-encoded fields: the same batches, as messages.
  let at = 0;
  for (const { count } of batches) {
    const value = { events: events.slice(at, (at += count)).map(toEvent) };
    yield create(TailEventsResponseSchema, { item: { case: "events", value } });
  }
}

/** Live events that arrived together, in batches; the same array reaches every unfiltered tail of its thread: converted once. */
function liveBatches(events: StoredEvent[], perResponse: number, json: boolean): TailEventsResponse[] {
  const cache = json ? jsonLiveBatches : binaryLiveBatches;
  let byBatching = cache.get(events);
  if (!byBatching) cache.set(events, (byBatching = new Map()));
  let responses = byBatching.get(perResponse);
  if (!responses) byBatching.set(perResponse, (responses = [...batchResponses(events, perResponse, json)]));
  return responses;
}

// A live event reaches every tail of its thread as the same object: convert it once.
const eventResponses = new WeakMap<object, TailEventsResponse>();
const binaryEventResponses = new WeakMap<object, TailEventsResponse>();
const jsonLiveBatches = new WeakMap<object, Map<number, TailEventsResponse[]>>();
const binaryLiveBatches = new WeakMap<object, Map<number, TailEventsResponse[]>>();

/**
 * tailResponse for a binary client: the event is written straight to its wire
 * form (encodeEventDelimited, byte for byte what toBinary writes for the Event)
 * and carried as the response's field 1 (`event`) among its unknown fields,
 * which toBinary writes as they are. The bytes on the wire are the same; the
 * reflective encoding of an Event with a Struct payload, the replay's largest
 * cost, is skipped. Only for binary serialization: JSON would drop them.
 */
function binaryTailResponse(item: OneTailItem): TailEventsResponse {
  if (item.kind !== "event") return tailResponse(item);
  let response = binaryEventResponses.get(item.event);
  if (!response) {
    response = eventFieldResponse(encodeEventDelimited(item.event));
    binaryEventResponses.set(item.event, response);
  }
  return response;
}

/**
 * For tails that take live events as bytes: when a tail has been idle for its interval and its
 * thread holds nothing after its cursor, its heartbeat framed as the tail would have sent it
 * (undefined: the tail catches up, or ends if the thread is gone).
 *
 * Tails of a thread share its read for a quarter of the interval. Tails of one thread fall idle at
 * different moments, and with a read each, a heartbeat round of 10,000 tails was 10,000 Redis
 * reads whose replies, in flight together, made V8 grow the young generation back. A shared read
 * is at most that old, so events a live notification never announced wait at most that much longer;
 * one tail's own heartbeats are an interval apart, so each reads afresh.
 */
function idleHeartbeats(log: EventLog, heartbeatMs: number): NonNullable<LiveDelivery["idle"]> {
  const shareMs = heartbeatMs / 4;
  const reads = new Map<string, { thread: Promise<ThreadRecord | undefined>; at: number }>();
  let sweptAt = 0;
  return async (threadId, cursor) => {
    const now = Date.now();
    if (now - sweptAt >= shareMs) {
      sweptAt = now;
      for (const [id, read] of reads) if (now - read.at >= shareMs) reads.delete(id);
    }
    let read = reads.get(threadId);
    if (!read || now - read.at >= shareMs) {
      const fresh = { thread: log.getThread(threadId), at: now };
      reads.set(threadId, (read = fresh));
      // A failed read is not shared on: the next tail tries again.
      fresh.thread.catch(() => reads.get(threadId) === fresh && reads.delete(threadId));
    }
    const thread = await read.thread;
    if (!thread || thread.status === "deleted" || thread.lastSeq > cursor) return undefined;
    return heartbeatFrame(cursor, Date.now());
  };
}

/** A TailEventsResponse whose field 1 (`event`) is `data`: an Event's length and bytes. */
function eventFieldResponse(data: Uint8Array): TailEventsResponse {
  return preEncodedResponse(tailEventField, data);
}

/** A TailEventsResponse whose field `no` is `data` (a message's length and bytes), written as it is by toBinary. */
function preEncodedResponse(no: number, data: Uint8Array): TailEventsResponse {
  const response = create(TailEventsResponseSchema);
  response.$unknown = [lengthDelimited(no, data)];
  return response;
}

/** The field numbers of the messages pre-encoded into responses. */
const tailEventField = 1;
const tailEventsField = 4;
const appendEventsField = 3;

/** An unknown field of wire type 2 that toBinary writes as it is: `data` holds the length and the bytes. */
function lengthDelimited(no: number, data: Uint8Array) {
  return { no, wireType: WireType.LengthDelimited, data };
}

/** Whether the call's messages are JSON (Connect or gRPC-Web with JSON), which drops unknown fields. */
function jsonCall(ctx: HandlerContext): boolean {
  return /json/i.test(ctx.requestHeader.get("content-type") ?? "");
}

type OneTailItem = Exclude<TailItem, { kind: "events" | "live" }> | { kind: "event"; event: StoredEvent };

function tailResponse(item: OneTailItem): TailEventsResponse {
  switch (item.kind) {
    case "event": {
      let response = eventResponses.get(item.event);
      if (!response) {
        response = create(TailEventsResponseSchema, { item: { case: "event", value: toEvent(item.event) } });
        eventResponses.set(item.event, response);
      }
      return response;
    }
    case "caught-up":
      return create(TailEventsResponseSchema, { item: { case: "caughtUp", value: { lastSeq: BigInt(item.lastSeq) } } });
    case "heartbeat":
      return create(TailEventsResponseSchema, {
        item: { case: "heartbeat", value: { scannedSeq: BigInt(item.scannedSeq), sentAt: timestampNow() } },
      });
  }
}
