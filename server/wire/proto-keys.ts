// A "__proto__" key in a payload, input or output (google.protobuf.Struct) or in metadata
// (map<string, string>) is refused, INVALID_ARGUMENT naming where it is. Keeping it is not in
// our hands: protobuf-es decodes maps and Structs into plain objects, where assigning
// "__proto__" sets the prototype instead of adding a key, so the key vanished silently (and an
// object value became the map's prototype). So requests are checked before they are decoded:
//   - JSON: the text, in the router's JSON decoder (json-requests.ts) and the original HTTP API;
//   - binary: each unary route that takes maps reads its body through refuseProtoKeys, which
//     looks for the key's bytes and, only when they occur, walks the message by its descriptor
//     to tell a map key from the same text in a value. Nothing in the call ran.
import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { Compression, UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";

const protoKey = "__proto__";
const protoKeyBytes = Buffer.from(protoKey);

/** The refusal of a "__proto__" key in the object at `path`. */
export function protoKeyRefused(path: string): ConnectError {
  return new ConnectError(`${path || "the request"} holds the key "__proto__", which is not accepted`, Code.InvalidArgument);
}

/**
 * The path of the first object holding a "__proto__" key in JSON text (which JSON.parse keeps
 * as an own key), or undefined. Cheap when the text cannot hold one: the key written out, or
 * escaped (`\u005f…`), is the only way to spell it.
 */
export function protoKeyInJson(text: string): string | undefined {
  if (!text.includes(protoKey) && !text.includes("\\u")) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined; // not JSON: the decoder says so
  }
  return protoKeyIn(value);
}

/** Decoders refuse JSON nested deeper than this: the walk need not go further (nor risk the stack). */
const maxJsonDepth = 200;

/** The path of the first object holding a "__proto__" key in a parsed JSON value, or undefined. */
export function protoKeyIn(value: unknown, path = "", depth = 0): string | undefined {
  if (typeof value !== "object" || value === null || depth > maxJsonDepth) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = protoKeyIn(value[i], `${path}[${i}]`, depth + 1);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (Object.hasOwn(value, protoKey)) return path;
  for (const [key, item] of Object.entries(value)) {
    const found = protoKeyIn(item, path ? `${path}.${key}` : key, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

export interface ProtoKeyOptions {
  /** The request compressions the router accepts (to read a compressed body as Connect will). */
  compressions: Compression[];
  readMaxBytes: number;
}

/** Wraps the router's unary handlers whose requests hold maps (call once every service is registered). */
export function refuseProtoKeys(router: ConnectRouter, opts: ProtoKeyOptions): void {
  router.handlers.forEach((handler, i) => {
    if (handler.method.methodKind === "unary" && holdsMaps(handler.method.input)) router.handlers[i] = checkingBody(handler, opts);
  });
}

function checkingBody(handler: UniversalHandler, opts: ProtoKeyOptions): UniversalHandler {
  const desc = handler.method.input;
  const wrapped = (req: UniversalServerRequest) => {
    const contentType = req.header.get("content-type") ?? "";
    const body = req.body;
    // JSON is checked as text; a GET or an empty body has nothing to check.
    if (/json/i.test(contentType) || body === null || typeof body !== "object" || !(Symbol.asyncIterator in body)) return handler(req);
    const enveloped = contentType.startsWith("application/grpc");
    const encoding = req.header.get(enveloped ? "grpc-encoding" : "content-encoding") ?? "identity";
    const compression = encoding === "identity" ? undefined : opts.compressions.find((c) => c.name === encoding);
    // An encoding Connect does not take: it refuses the request itself.
    if (encoding !== "identity" && !compression) return handler(req);
    const check = async (bytes: Uint8Array) => {
      for (const message of await messagesOf(bytes, enveloped, compression, opts.readMaxBytes)) {
        const path = protoKeyInBinary(desc, message);
        if (path !== undefined) throw protoKeyRefused(path);
      }
    };
    return handler({ ...req, body: checked(body as AsyncIterable<Uint8Array>, compression !== undefined, check) });
  };
  return Object.assign(wrapped, handler);
}

/**
 * Passes the body on as it comes and, at its end, checks it: Connect reads a unary request to
 * its end before it calls anything, so an error thrown here is the call's answer, in its protocol.
 * Uncompressed, the whole body is looked at only when the key's bytes occur in it.
 */
async function* checked(body: AsyncIterable<Uint8Array>, compressed: boolean, check: (bytes: Uint8Array) => Promise<void>): AsyncIterable<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let suspect = compressed;
  let carry: Uint8Array = new Uint8Array(0);
  for await (const chunk of body) {
    chunks.push(chunk);
    if (!suspect) {
      const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      // The key may straddle two chunks: the last bytes of the one before go first.
      suspect = bytes.includes(protoKeyBytes) || Buffer.concat([carry, bytes.subarray(0, protoKeyBytes.length - 1)]).includes(protoKeyBytes);
      carry = bytes.subarray(Math.max(0, bytes.length - (protoKeyBytes.length - 1)));
    }
    yield chunk;
  }
  if (suspect) await check(Buffer.concat(chunks));
}

/** The request's messages: the body, or its gRPC envelopes; decompressed. Empty when malformed (Connect refuses it). */
async function messagesOf(body: Uint8Array, enveloped: boolean, compression: Compression | undefined, readMaxBytes: number): Promise<Uint8Array[]> {
  const frames: { compressed: boolean; data: Uint8Array }[] = [];
  if (!enveloped) frames.push({ compressed: compression !== undefined, data: body });
  else {
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    for (let at = 0; at + 5 <= body.length; ) {
      const length = view.getUint32(at + 1);
      if (at + 5 + length > body.length) return [];
      frames.push({ compressed: (body[at] & 1) === 1, data: body.subarray(at + 5, at + 5 + length) });
      at += 5 + length;
    }
  }
  try {
    return await Promise.all(frames.map((f) => (f.compressed && compression ? compression.decompress(f.data, readMaxBytes) : f.data)));
  } catch {
    return [];
  }
}

/**
 * The path of the first map or Struct holding the key "__proto__" in `bytes` read as `desc`,
 * or undefined (also for bytes that are not a `desc`: Connect refuses those itself).
 */
export function protoKeyInBinary(desc: DescMessage, bytes: Uint8Array): string | undefined {
  if (!Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(protoKeyBytes)) return undefined;
  try {
    return walk(desc, new BinaryReader(bytes), bytes.length, "", 0);
  } catch {
    return undefined;
  }
}

/** Connect's decoder stops at this depth: a deeper request is refused as malformed anyway. */
const maxDepth = 100;

function walk(desc: DescMessage, reader: BinaryReader, end: number, path: string, depth: number): string | undefined {
  if (depth > maxDepth) return undefined;
  const seen = new Map<number, number>();
  while (reader.pos < end) {
    const [no, wireType] = reader.tag();
    const field = fieldOf(desc, no);
    if (!field || wireType !== WireType.LengthDelimited || !holdsMapsField(field)) {
      reader.skip(wireType, no);
      continue;
    }
    const fieldEnd = reader.uint32() + reader.pos;
    const index = seen.get(no) ?? 0;
    seen.set(no, index + 1);
    const found =
      field.fieldKind === "map"
        ? walkMapEntry(field, reader, fieldEnd, mapPath(desc, field, path), depth)
        : walk(field.message!, reader, fieldEnd, elementPath(desc, field, path, index), depth + 1);
    if (found !== undefined) return found;
    reader.pos = fieldEnd;
  }
  return undefined;
}

/** A map entry (key = 1, value = 2): the map's path when the key is "__proto__", else whatever its value holds. */
function walkMapEntry(field: DescField & { fieldKind: "map" }, reader: BinaryReader, end: number, path: string, depth: number): string | undefined {
  let key: Uint8Array | undefined;
  let value: { from: number; to: number } | undefined;
  while (reader.pos < end) {
    const [no, wireType] = reader.tag();
    if (no === 1 && wireType === WireType.LengthDelimited) key = reader.bytes();
    else if (no === 2 && wireType === WireType.LengthDelimited && field.mapKind === "message") {
      const to = reader.uint32() + reader.pos;
      value = { from: reader.pos, to };
      reader.pos = to;
    } else reader.skip(wireType, no);
  }
  if (key && Buffer.from(key).equals(protoKeyBytes)) return path;
  if (!value || field.mapKind !== "message") return undefined;
  const name = new TextDecoder().decode(key);
  // Struct keys read like JSON (`payload.a.b`); other maps like protovalidate (`metadata["k"]`).
  const valuePath = field.parent.typeName === "google.protobuf.Struct" ? `${path}.${name}` : `${path}[${JSON.stringify(name)}]`;
  reader.pos = value.from;
  return walk(field.message, reader, value.to, valuePath, depth + 1);
}

/** Paths name proto fields; Struct, Value and ListValue are see-through, as in the JSON of the request. */
function mapPath(desc: DescMessage, field: DescField, path: string): string {
  return desc.typeName === "google.protobuf.Struct" ? path : join(path, field.name);
}

function elementPath(desc: DescMessage, field: DescField, path: string, index: number): string {
  if (desc.typeName === "google.protobuf.Value") return path;
  if (desc.typeName === "google.protobuf.ListValue") return `${path}[${index}]`;
  return field.fieldKind === "list" ? `${join(path, field.name)}[${index}]` : join(path, field.name);
}

function join(path: string, name: string): string {
  return path ? `${path}.${name}` : name;
}

const fieldsByNumber = new WeakMap<DescMessage, Map<number, DescField>>();

function fieldOf(desc: DescMessage, no: number): DescField | undefined {
  let byNumber = fieldsByNumber.get(desc);
  if (!byNumber) fieldsByNumber.set(desc, (byNumber = new Map(desc.fields.map((f) => [f.number, f]))));
  return byNumber.get(no);
}

/** Whether a field is a map or leads to one (a message field, or a list of messages, that holds maps). */
function holdsMapsField(field: DescField): boolean {
  if (field.fieldKind === "map") return true;
  if (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) return holdsMaps(field.message!);
  return false;
}

const mapsHeld = new WeakMap<DescMessage, boolean>();

/** Whether a message holds a map anywhere (google.protobuf.Struct is one). */
function holdsMaps(desc: DescMessage, visiting = new Set<DescMessage>()): boolean {
  const known = mapsHeld.get(desc);
  if (known !== undefined) return known;
  if (visiting.has(desc)) return false; // a cycle: decided by its other fields
  visiting.add(desc);
  const found = desc.fields.some((f) => {
    if (f.fieldKind === "map") return true;
    if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) return holdsMaps(f.message, visiting);
    return false;
  });
  visiting.delete(desc);
  if (found || visiting.size === 0) mapsHeld.set(desc, found);
  return found;
}
