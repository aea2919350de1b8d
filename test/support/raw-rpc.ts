// Raw requests over the Connect, gRPC and gRPC-Web wire protocols, for bodies and
// headers no client library would send. Each answers the call's outcome: "ok" (a
// unary answer, or a stream's first message), the error code with its message, an
// HTTP status without an RPC status, or "timeout". Each request takes a connection
// of its own, so that what one does to a connection (a server may close an HTTP/1.1
// one, or stop taking streams on an HTTP/2 one, after refusing a request early) is
// not blamed on the next.
import http from "node:http";
import http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";

export type RawOutcome =
  | { kind: "ok" }
  | { kind: "error"; code: Code; message: string }
  | { kind: "http"; status: number }
  | { kind: "timeout" };

/**
 * Request headers; a list sends the header once per value (HTTP/1.1 only: Node's HTTP/2
 * client refuses a second value of a single-value header such as Authorization).
 */
export type RawHeaders = Record<string, string | string[]>;

export function envelope(payload: Uint8Array, flags = 0, declaredLength = payload.length): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, declaredLength);
  out.set(payload, 5);
  return out;
}

/** Connect unary (HTTP/1.1): the status and the JSON error body. */
export async function connectUnary(url: string, contentType: string | undefined, body: Uint8Array, headers: RawHeaders, timeoutMs: number): Promise<RawOutcome> {
  return post(url, contentType, body, headers, timeoutMs, async (res) => {
    if (res.statusCode === 200) return { kind: "ok" };
    return errorFromJson(await text(res)) ?? { kind: "http", status: res.statusCode! };
  });
}

/** Connect streaming (HTTP/1.1): the first message, or the end-stream message's error. */
export async function connectStream(url: string, contentType: string, body: Uint8Array, headers: RawHeaders, timeoutMs: number): Promise<RawOutcome> {
  return post(url, contentType, body, headers, timeoutMs, async (res) => {
    if (res.statusCode !== 200) return errorFromJson(await text(res)) ?? { kind: "http", status: res.statusCode! };
    for await (const [flags, payload] of envelopes(res)) {
      if (!(flags & 0x02)) return { kind: "ok" };
      const end = JSON.parse(new TextDecoder().decode(payload)) as { error?: unknown };
      return end.error ? (errorFromJson(JSON.stringify(end.error)) ?? { kind: "http", status: 200 }) : { kind: "ok" };
    }
    return { kind: "http", status: 200 };
  });
}

/** gRPC-Web (HTTP/1.1): a trailers-only status, the first message, or the trailer frame's status. */
export async function grpcWeb(url: string, contentType: string, body: Uint8Array, headers: RawHeaders, timeoutMs: number): Promise<RawOutcome> {
  return post(url, contentType, body, { "x-grpc-web": "1", ...headers }, timeoutMs, async (res) => {
    const headerStatus = grpcStatus(res.headers["grpc-status"] as string | undefined, res.headers["grpc-message"] as string | undefined);
    if (headerStatus) return headerStatus;
    if (res.statusCode !== 200) return { kind: "http", status: res.statusCode! };
    for await (const [flags, payload] of envelopes(res)) {
      if (!(flags & 0x80)) return { kind: "ok" };
      const trailer = Object.fromEntries(
        new TextDecoder()
          .decode(payload)
          .split("\r\n")
          .filter(Boolean)
          .map((line) => [line.slice(0, line.indexOf(":")).trim().toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]),
      );
      return grpcStatus(trailer["grpc-status"], trailer["grpc-message"]) ?? { kind: "http", status: 200 };
    }
    return { kind: "http", status: 200 };
  });
}

/** gRPC (HTTP/2): the first message, or grpc-status from headers or trailers. */
export function grpc(url: string, contentType: string | undefined, body: Uint8Array, headers: RawHeaders, timeoutMs: number): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const { origin, pathname } = new URL(url);
    const session = http2.connect(origin);
    session.on("error", () => done({ kind: "http", status }));
    const stream = session.request({ ":method": "POST", ":path": pathname, te: "trailers", ...(contentType ? { "content-type": contentType } : {}), ...headers });
    let status = 0;
    const done = (outcome: RawOutcome) => {
      clearTimeout(timer);
      resolve(outcome);
      session.destroy();
    };
    const timer = setTimeout(() => done({ kind: "timeout" }), timeoutMs);
    const fromHeaders = (h: http2.IncomingHttpHeaders) => grpcStatus(h["grpc-status"] as string | undefined, h["grpc-message"] as string | undefined);
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      const trailersOnly = fromHeaders(h);
      if (trailersOnly) done(trailersOnly);
    });
    stream.on("data", (chunk: Buffer) => {
      if (chunk.length > 0) done({ kind: "ok" });
    });
    stream.on("trailers", (h) => done(fromHeaders(h) ?? { kind: "http", status }));
    stream.on("close", () => done({ kind: "http", status }));
    stream.on("error", () => done({ kind: "http", status }));
    stream.end(body);
  });
}

function post(
  url: string,
  contentType: string | undefined,
  body: Uint8Array,
  headers: RawHeaders,
  timeoutMs: number,
  read: (res: http.IncomingMessage) => Promise<RawOutcome>,
): Promise<RawOutcome> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const finish = (outcome: RawOutcome | Error) => {
      clearTimeout(timer);
      req.destroy();
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: "timeout" }), timeoutMs);
    const req = http.request(url, { method: "POST", agent: false, headers: { ...(contentType ? { "content-type": contentType } : {}), ...headers } }, (res) => {
      answered = true;
      read(res).then(finish, finish);
    });
    // Once it answered, the server may close before it read the whole body.
    req.on("error", (err) => {
      if (!answered) finish(err);
    });
    req.end(body);
  });
}

async function text(res: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function errorFromJson(text: string): RawOutcome | undefined {
  try {
    const json = JSON.parse(text) as { code?: string; message?: string };
    const code = json.code === undefined ? undefined : codeFromString(json.code);
    return code === undefined ? undefined : { kind: "error", code, message: json.message ?? "" };
  } catch {
    return undefined;
  }
}

function grpcStatus(status: string | null | undefined, message: string | null | undefined): RawOutcome | undefined {
  if (status === null || status === undefined) return undefined;
  const code = Number(status);
  return code === 0 ? { kind: "ok" } : { kind: "error", code, message: decodeURIComponent(message ?? "") };
}

async function* envelopes(body: AsyncIterable<Uint8Array>): AsyncIterable<[flags: number, payload: Uint8Array]> {
  let buffered = new Uint8Array(0);
  for await (const chunk of body) {
    const joined = new Uint8Array(buffered.length + chunk.length);
    joined.set(buffered);
    joined.set(chunk, buffered.length);
    buffered = joined;
    while (buffered.length >= 5) {
      const length = new DataView(buffered.buffer, buffered.byteOffset).getUint32(1);
      if (buffered.length < 5 + length) break;
      yield [buffered[0], buffered.slice(5, 5 + length)];
      buffered = buffered.slice(5 + length);
    }
  }
}

/** Everything an HTTP/2 call answered, as it came: for comparing two servers' answers byte for byte. */
export interface RawExchange {
  status: number;
  headers: Record<string, string>;
  /** The body split into envelopes (gRPC, gRPC-Web, Connect streaming); none for Connect unary. */
  frames: { flags: number; data: Buffer }[];
  body: Buffer;
  trailers: Record<string, string>;
  /** The stream ended by the client (`stop` said so, or the timeout), not by the server. */
  cut: boolean;
}

/**
 * One HTTP/2 request on a connection of its own, recorded to the end of the stream, or until
 * `stop` (given the frames so far) says to cancel it (RST_STREAM CANCEL), or `timeoutMs`.
 */
export function exchange(
  url: string,
  headers: Record<string, string>,
  body: Uint8Array,
  opts: { timeoutMs?: number; enveloped?: boolean; stop?: (frames: RawExchange["frames"]) => boolean } = {},
): Promise<RawExchange> {
  const { origin, pathname } = new URL(url);
  const session = http2.connect(origin);
  const stream = session.request({ ":method": "POST", ":path": pathname, ...headers });
  const out: RawExchange = { status: 0, headers: {}, frames: [], body: Buffer.alloc(0), trailers: {}, cut: false };
  const flat = (h: http2.IncomingHttpHeaders) =>
    Object.fromEntries(Object.entries(h).flatMap(([k, v]) => (k.startsWith(":") || v === undefined ? [] : [[k, Array.isArray(v) ? v.join(", ") : String(v)]])));
  return new Promise((resolve) => {
    let done = false;
    const finish = (cut: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      out.cut = cut;
      if (cut) stream.close(http2.constants.NGHTTP2_CANCEL);
      session.close();
      resolve(out);
    };
    const timer = setTimeout(() => finish(true), opts.timeoutMs ?? 10_000);
    session.on("error", () => finish(false));
    stream.on("response", (h) => {
      out.status = Number(h[":status"]);
      out.headers = flat(h);
    });
    stream.on("data", (chunk: Buffer) => {
      out.body = Buffer.concat([out.body, chunk]);
      if (opts.enveloped === false) return;
      out.frames = [];
      for (let at = 0; at + 5 <= out.body.length; ) {
        const length = out.body.readUInt32BE(at + 1);
        if (at + 5 + length > out.body.length) break;
        out.frames.push({ flags: out.body[at], data: out.body.subarray(at + 5, at + 5 + length) });
        at += 5 + length;
      }
      if (opts.stop?.(out.frames)) finish(true);
    });
    stream.on("trailers", (h) => (out.trailers = flat(h)));
    stream.on("close", () => finish(false));
    stream.on("error", () => finish(false));
    stream.end(body);
  });
}
