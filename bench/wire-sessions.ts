// The lean clients' connections: a fixed set of node:http2 sessions to one
// server, and one gRPC unary call on a session with a pre-encoded request
// frame, at the wire (no client library: what a call costs the client here
// is the HTTP/2 stream, not a framework, so the server's cost dominates).
import { type ClientHttp2Session, connect, constants, type OutgoingHttpHeaders } from "node:http2";

/** Room for thousands of streams on one session (Node's default, 10 MB, refuses streams past it). */
const maxSessionMemoryMb = 256;

export class WireSessions {
  private readonly sessions: ClientHttp2Session[];
  /** Connection errors so far (a refused or reset connection would otherwise kill the bench process). */
  readonly errors: string[] = [];

  constructor(baseUrl: string, count: number) {
    this.sessions = Array.from({ length: count }, () => {
      const session = connect(baseUrl, { maxSessionMemory: maxSessionMemoryMb });
      session.on("error", (err) => {
        if (this.errors.length < 3) this.errors.push(`connection: ${String(err)}`);
      });
      return session;
    });
  }

  get count(): number {
    return this.sessions.length;
  }

  /** Session `i` modulo the number of sessions. */
  session(i: number): ClientHttp2Session {
    return this.sessions[i % this.sessions.length];
  }

  close(): void {
    for (const session of this.sessions) session.destroy();
  }
}

/** The request headers of a gRPC call to `path`, built once per path. */
export function grpcHeaders(path: string): OutgoingHttpHeaders {
  return { [constants.HTTP2_HEADER_METHOD]: "POST", [constants.HTTP2_HEADER_PATH]: path, "content-type": "application/grpc", te: "trailers" };
}

/** A call that ended with a gRPC status other than OK, or without one. */
export class WireCallError extends Error {}

/** The gRPC status of a call: from its trailers, or from the headers of a trailers-only answer. */
export function statusOf(headers: Record<string, unknown>): string | undefined {
  const status = headers["grpc-status"];
  return status === undefined ? undefined : String(status);
}

/** One unary call: `frame` is the request's gRPC frame; resolves with the response message. */
export function wireUnary(session: ClientHttp2Session, headers: OutgoingHttpHeaders, frame: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    let body: Buffer | undefined;
    let status: string | undefined;
    let message = "";
    const onStatus = (h: Record<string, unknown>) => {
      status = statusOf(h) ?? status;
      if (h["grpc-message"] !== undefined) message = decodeURIComponent(String(h["grpc-message"]));
    };
    stream.on("response", onStatus);
    stream.on("trailers", onStatus);
    stream.on("data", (chunk: Buffer) => (body = body === undefined ? chunk : Buffer.concat([body, chunk])));
    // 'close' says what happened; an 'error' comes before it.
    stream.on("error", () => {});
    stream.on("close", () => {
      if (status === "0" && body !== undefined && body.length >= 5) resolve(body.subarray(5, 5 + body.readUInt32BE(1)));
      else reject(new WireCallError(status === undefined ? `no grpc-status (stream closed with code ${stream.rstCode})` : `grpc-status ${status}: ${message}`));
    });
    stream.end(frame);
  });
}
