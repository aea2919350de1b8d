// What an archive object holds: gzipped JSONL, one event per line in the
// proto's JSON form (field names as in the API), in seq order. Readers stream
// it line by line, so an archive is never held whole in memory.
import { createHash } from "node:crypto";
import { pipeline } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { createGunzip, gzipSync } from "node:zlib";
import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type Event, EventSchema } from "../../../gen/eventide/v1/resources_pb.js";
import { eventLevels, type EventLevel, type StoredEvent } from "../../domain/records.js";
import { toEvent } from "../../services/convert.js";

const seqDigits = 12;
const maxSeq = 10 ** seqDigits - 1;
const segmentPattern = /^[A-Za-z0-9_.-]+$/;

/** `threads/<tenant_id>/<thread_id>/<from_seq>-<to_seq>.jsonl.gz`, seqs zero-padded to 12 digits. */
export function archiveKey(tenantId: string, threadId: string, fromSeq: number, toSeq: number): string {
  for (const segment of [tenantId, threadId]) {
    if (!segmentPattern.test(segment) || segment === "." || segment === "..") {
      throw new Error(`${JSON.stringify(segment)} cannot be part of an archive key`);
    }
  }
  for (const seq of [fromSeq, toSeq]) {
    if (!Number.isSafeInteger(seq) || seq < 0 || seq > maxSeq) throw new Error(`seq ${seq} cannot be part of an archive key`);
  }
  const pad = (seq: number) => String(seq).padStart(seqDigits, "0");
  return `threads/${tenantId}/${threadId}/${pad(fromSeq)}-${pad(toSeq)}.jsonl.gz`;
}

export function encodeArchive(events: StoredEvent[]): Buffer {
  let text = "";
  for (const e of events) text += `${toJsonString(EventSchema, toEvent(e))}\n`;
  return gzipSync(text);
}

/**
 * The events of an archive object, streamed: gunzip, split lines, parse each.
 * Ending the iteration early releases the source.
 */
export async function* decodeArchive(source: NodeJS.ReadableStream): AsyncGenerator<StoredEvent> {
  for await (const page of decodeArchivePages(source)) yield* page;
}

/** decodeArchive a decompressed chunk at a time: the events of its whole lines (never an empty page). */
export async function* decodeArchivePages(source: NodeJS.ReadableStream): AsyncGenerator<StoredEvent[]> {
  // Larger output chunks than the default 16 KiB: fewer trips to the thread pool, longer pages.
  const gunzip = createGunzip({ chunkSize: 256 * 1024 });
  // A source error destroys gunzip, which the loop below throws; a loop left
  // early destroys gunzip, and pipeline then destroys the source.
  pipeline(source, gunzip, () => {});
  const decoder = new StringDecoder("utf8");
  let rest = "";
  let line = 0;
  for await (const chunk of gunzip as AsyncIterable<Buffer>) {
    const lines = (rest + decoder.write(chunk)).split("\n");
    rest = lines.pop()!;
    const page: StoredEvent[] = [];
    for (const text of lines) if (text) page.push(parseLine(text, ++line));
    if (page.length > 0) yield page;
  }
  rest += decoder.end();
  if (rest) yield [parseLine(rest, ++line)];
}

/** The converse of toEvent (server/services/convert.ts). */
export function fromEvent(e: Event): StoredEvent {
  return {
    eventId: e.eventId,
    threadId: e.threadId,
    turnId: e.turnId,
    seq: Number(e.seq),
    type: e.type,
    payload: e.payload ?? {},
    metadata: { ...e.metadata },
    schemaVersion: e.schemaVersion,
    createdAt: e.createdAt ? timestampMs(e.createdAt) : 0,
    tenantId: e.tenantId,
    level: toLevel(e.level),
  };
}

export function sha256Hex(body: Buffer): string {
  return createHash("sha256").update(body).digest("hex");
}

function parseLine(text: string, line: number): StoredEvent {
  try {
    return parseWritten(text) ?? fromEvent(fromJsonString(EventSchema, text));
  } catch (err) {
    throw new Error(`archive line ${line}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function toLevel(level: string): EventLevel {
  if (level === "") return "info"; // the proto's default
  if ((eventLevels as readonly string[]).includes(level)) return level as EventLevel;
  throw new Error(`unknown event level ${JSON.stringify(level)}`);
}

const storedKeys = new Set(["eventId", "threadId", "turnId", "seq", "type", "payload", "metadata", "schemaVersion", "createdAt", "tenantId", "level"]);
/** What toJsonString writes for a Timestamp with whole milliseconds. */
const writtenTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{3})?Z$/;
const digits = /^\d+$/;

/**
 * A line as encodeArchive writes it, read with JSON.parse: several times
 * faster than fromJsonString (which builds an Event and its Struct payload
 * first). Anything else (other spellings the proto's JSON allows, a value of
 * an unexpected type) answers undefined, and the line goes through
 * fromJsonString, which reads it or says why not.
 */
function parseWritten(text: string): StoredEvent | undefined {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) return undefined;
  for (const key in o) if (!storedKeys.has(key)) return undefined;
  const { eventId = "", threadId = "", turnId = "", seq, type = "", payload, metadata, schemaVersion = 0, createdAt, tenantId = "", level = "" } = o;
  if (typeof eventId !== "string" || typeof threadId !== "string" || typeof turnId !== "string" || typeof type !== "string") return undefined;
  if (typeof tenantId !== "string" || typeof level !== "string") return undefined;
  if (typeof seq !== "string" || !digits.test(seq) || seq.length > 15) return undefined;
  if (typeof schemaVersion !== "number" || !Number.isInteger(schemaVersion) || schemaVersion > 0x7fffffff || schemaVersion < -0x80000000) return undefined;
  if (payload !== undefined && (typeof payload !== "object" || payload === null || Array.isArray(payload))) return undefined;
  if (metadata !== undefined) {
    if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) return undefined;
    for (const key in metadata) if (typeof (metadata as Record<string, unknown>)[key] !== "string") return undefined;
  }
  let created = 0;
  if (createdAt !== undefined) {
    if (typeof createdAt !== "string" || !writtenTime.test(createdAt)) return undefined;
    created = Date.parse(createdAt);
    if (!Number.isFinite(created)) return undefined;
  }
  return {
    eventId,
    threadId,
    turnId,
    seq: Number(seq),
    type,
    payload: (payload ?? {}) as StoredEvent["payload"],
    metadata: (metadata ?? {}) as Record<string, string>,
    schemaVersion,
    createdAt: created,
    tenantId,
    level: toLevel(level),
  };
}
