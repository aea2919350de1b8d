// One port for every client: HTTP/2 (gRPC, gRPC-Web, Connect) and HTTP/1.1
// (browsers' Connect and plain HTTP). Cleartext: browsers never speak
// cleartext HTTP/2, so each connection's first bytes decide which server takes
// it. TLS: ALPN decides, on one secure server that also allows HTTP/1.1.
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type tls from "node:tls";
import { cors } from "@connectrpc/connect";
import { ConfigError } from "./config.js";
import type { StreamHandler } from "./wire/wire-path.js";

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** PEM files of the server's certificate (chain) and private key. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** What a server had open, for the shutdown log. */
export interface OpenConnections {
  http2Sessions: number;
  http1Connections: number;
  requests: number;
}

/**
 * What one connection may hold, and for how long: a server that never timed a
 * connection out could be filled with silent, slow or idle ones.
 */
export interface ConnectionLimits {
  /** A new connection must show what it speaks within this: cleartext, its first bytes; TLS, its handshake. */
  handshakeTimeoutMs: number;
  /** An HTTP/1.1 request's headers must be complete within this of its first byte (or of the connection's start). */
  headersTimeoutMs: number;
  /** An HTTP/1.1 connection between requests, or an HTTP/2 session with no open stream, is closed after this. */
  idleTimeoutMs: number;
  /** Connections open at once; more are closed as they arrive. */
  maxConnections: number;
  /** Streams open at once on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxStreamsPerConnection: number;
}

export interface ListenOptions {
  port: number;
  host: string;
  limits: ConnectionLimits;
  /** Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) instead of cleartext. */
  tls?: TlsFiles;
  /** Offered every HTTP/2 stream before `handler`: the streams it serves never become requests (see wire/wire-path.ts). */
  streams?: StreamHandler;
}

export interface ListeningServer {
  port: number;
  scheme: "http" | "https";
  /**
   * Stops accepting connections and lets the open ones finish their calls
   * (HTTP/2 GOAWAY; HTTP/1.1 connections close once idle). What is still open
   * after `graceMs` is dropped. Resolves when every connection is closed, with
   * what had to be dropped.
   */
  close(graceMs?: number): Promise<OpenConnections>;
}

const h2Preface = Buffer.from("PRI * HTTP/2.0");

/** How long a closing server lets open calls finish when its caller names no bound. */
export const defaultGraceMs = 2_000;

/** Requests an HTTP/1.1 client may pipeline behind the one being answered; more close its connection. */
const maxPipelined = 16;

export async function listen(handler: RequestHandler, options: ListenOptions): Promise<ListeningServer> {
  const { limits } = options;
  const connections = new Connections(limits);
  const tracked = connections.track(handler);
  // Node's own HTTP/1 timeouts: headers (and whole requests, at Node's default of 5 minutes),
  // checked every connectionsCheckingInterval; keep-alive connections idle between requests.
  const http1Timeouts = {
    headersTimeout: limits.headersTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
  };
  const http2Settings = { maxConcurrentStreams: limits.maxStreamsPerConnection };
  let listener: net.Server;
  let http1: http.Server | undefined;
  if (options.tls) {
    const secure = http2.createSecureServer(
      { ...readTlsFiles(options.tls), allowHTTP1: true, handshakeTimeout: limits.handshakeTimeoutMs, settings: http2Settings },
      tracked,
    );
    // Its HTTP/1.1 connections are served by Node's HTTP/1 code, which reads these from this server.
    Object.assign(secure, http1Timeouts);
    secure.on("connection", (socket: net.Socket) => connections.add(socket));
    // ALPN chose: "h2", or HTTP/1.1 ("http/1.1", or no ALPN at all).
    secure.on("secureConnection", (socket: tls.TLSSocket) => {
      if (socket.alpnProtocol !== "h2") connections.servesHttp1(socket);
    });
    secure.on("session", (session) => connections.addSession(session));
    if (options.streams) offerStreamsFirst(secure, options.streams, connections);
    listener = secure;
  } else {
    const h1 = http.createServer(http1Timeouts, tracked as http.RequestListener);
    // Node starts checking HTTP/1 header and request timeouts when its server listens. This one
    // never listens itself (the sniffer hands it its sockets), so it is told it does.
    h1.emit("listening");
    http1 = h1;
    const h2 = http2.createServer({ settings: http2Settings }, tracked as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
    h2.on("session", (session) => connections.addSession(session));
    if (options.streams) offerStreamsFirst(h2, options.streams, connections);
    listener = net.createServer((socket) => {
      connections.add(socket);
      sniff(socket, limits.handshakeTimeoutMs, (isH2) => {
        if (!isH2) connections.servesHttp1(socket);
        (isH2 ? h2 : h1).emit("connection", socket);
      });
    });
  }
  // Past the cap, Node closes each new connection as it is accepted.
  listener.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (listener.address() as net.AddressInfo).port,
    scheme: options.tls ? "https" : "http",
    async close(graceMs = defaultGraceMs) {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      connections.drain();
      // Stops its timeout checks (it listens on nothing, so there is nothing else to close).
      http1?.close();
      let dropped: OpenConnections = { http2Sessions: 0, http1Connections: 0, requests: 0 };
      const timer = setTimeout(() => {
        dropped = connections.open();
        connections.destroy();
      }, graceMs);
      await closed;
      clearTimeout(timer);
      return dropped;
    },
  };
}

/**
 * Puts `streams` in front of Node's compatibility layer, which turns every stream into a
 * request and a response (it listens to 'stream' once a request handler is set): a stream
 * `streams` serves never becomes one; the others reach the handler as before.
 */
function ignoreStreamError(): void {}

function offerStreamsFirst(server: http2.Http2Server | http2.Http2SecureServer, streams: StreamHandler, connections: Connections): void {
  const compat = server.listeners("stream") as ((...args: unknown[]) => void)[];
  server.removeAllListeners("stream");
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    // A client's reset, or its session closed under the stream (GOAWAY with an error code, even
    // before this handler ran), surfaces as the stream's 'close', which ends whatever serves it;
    // unheard, its 'error' would take the process down.
    stream.on("error", ignoreStreamError);
    // Reset before its headers came up: nothing to serve (as track() does for requests).
    if (stream.destroyed) return;
    if (streams(stream, headers, rawHeaders)) {
      connections.servesStream(stream);
      return;
    }
    for (const listener of compat) listener.call(server, stream, headers, flags, rawHeaders);
  });
}

/**
 * The server's connections, so shutdown can ask each to finish, and drop the
 * stragglers; HTTP/2 sessions that hold no stream are closed once idle.
 */
class Connections {
  private readonly sockets = new Set<net.Socket>();
  /** HTTP/1.1 sockets → requests on them not yet answered (the one being answered and those pipelined behind it). */
  private readonly http1 = new Map<net.Socket, number>();
  /** HTTP/1.1 sockets that have not sent a whole request yet → the timer that drops them. */
  private readonly firstRequest = new Map<net.Socket, NodeJS.Timeout>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private requests = 0;
  private draining = false;

  constructor(private readonly limits: ConnectionLimits) {}

  add(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }

  servesHttp1(socket: net.Socket): void {
    this.http1.set(socket, 0);
    // Node times a request's headers from its first byte: a connection that never sends one
    // (after the TLS handshake) would otherwise stay for good.
    this.firstRequest.set(socket, setTimeout(() => socket.destroy(), this.limits.headersTimeoutMs).unref());
    socket.once("close", () => {
      this.http1.delete(socket);
      clearTimeout(this.firstRequest.get(socket));
      this.firstRequest.delete(socket);
    });
  }

  addSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    // Idle = no open stream: a session with a live tail is busy however quiet it is, and PINGs
    // or SETTINGS alone do not keep a session open. The close is a GOAWAY, as at shutdown.
    let open = 0;
    let idle: NodeJS.Timeout | undefined;
    const idleFromNow = () => {
      idle = setTimeout(() => session.close(), this.limits.idleTimeoutMs).unref();
    };
    // One listener for the session's streams ('close' comes once): an open stream holds no closure of its own.
    const streamClosed = () => {
      if (--open === 0 && !session.closed) idleFromNow();
    };
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      open++;
      clearTimeout(idle);
      stream.on("close", streamClosed);
    });
    session.once("close", () => {
      clearTimeout(idle);
      this.sessions.delete(session);
    });
    idleFromNow();
    if (this.draining) session.close();
  }

  /** Counts a stream served outside the request handler as a request, until it closes. */
  servesStream(stream: http2.ServerHttp2Stream): void {
    this.requests++;
    stream.on("close", this.streamServed);
  }

  /** A served stream closed ('close' comes once: one listener for every stream). */
  private readonly streamServed = () => {
    this.requests--;
  };

  /**
   * Counts requests per HTTP/1.1 connection, so a draining server closes each
   * once idle. A request whose client is already gone is not served: nothing
   * would ever tell it so, and a stream it opened would hold its slot for good.
   */
  track(handler: RequestHandler): RequestHandler {
    return (req, res) => {
      if (req.httpVersionMajor !== 1) {
        // Reset before its request came up.
        if ((req as http2.Http2ServerRequest).stream.destroyed) return;
        this.serve(handler, req, res, undefined);
        return;
      }
      const socket = req.socket as net.Socket;
      if (socket.destroyed) return;
      if (!this.http1.has(socket)) this.servesHttp1(socket);
      clearTimeout(this.firstRequest.get(socket));
      this.firstRequest.delete(socket);
      const unanswered = this.http1.get(socket)!;
      if (unanswered > maxPipelined) {
        socket.destroy();
        return;
      }
      this.http1.set(socket, unanswered + 1);
      if ((res as http.ServerResponse).socket) {
        this.serve(handler, req, res, socket);
        return;
      }
      // Pipelined behind another request: Node answers in order and tells a waiting response
      // nothing when the connection closes, so it is served when its turn comes (or never).
      res.once("socket", () => {
        if (!socket.destroyed) this.serve(handler, req, res, socket);
      });
    };
  }

  private serve(handler: RequestHandler, req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1], socket: net.Socket | undefined): void {
    this.requests++;
    if (socket && this.draining) res.setHeader("Connection", "close");
    res.once("close", () => {
      this.requests--;
      if (socket) this.answered(socket);
    });
    handler(req, res);
  }

  private answered(socket: net.Socket): void {
    const unanswered = this.http1.get(socket);
    if (unanswered === undefined) return;
    this.http1.set(socket, unanswered - 1);
    if (this.draining && unanswered === 1) socket.end();
  }

  /**
   * HTTP/2 sessions get a GOAWAY: their open streams finish; a call the client
   * sent before it saw the GOAWAY is refused unprocessed (REFUSED_STREAM, safe
   * to retry; Node has no way to send the shutdown-notice GOAWAY that would
   * avoid the race). Idle HTTP/1.1 connections close.
   */
  drain(): void {
    this.draining = true;
    for (const session of this.sessions) session.close();
    for (const [socket, active] of this.http1) if (active === 0) socket.end();
  }

  destroy(): void {
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
  }

  open(): OpenConnections {
    return { http2Sessions: this.sessions.size, http1Connections: this.http1.size, requests: this.requests };
  }
}

function readTlsFiles(files: TlsFiles): { cert: Buffer; key: Buffer } {
  const read = (name: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`${name} ${JSON.stringify(path)} cannot be read: ${(err as Error).message}`);
    }
  };
  return { cert: read("TLS_CERT", files.certFile), key: read("TLS_KEY", files.keyFile) };
}

/**
 * Reads enough of the first bytes to tell the HTTP/2 preface from an HTTP/1
 * request line. A connection that has not said which it speaks within
 * `timeoutMs` (silent, or a byte now and then) is dropped.
 */
function sniff(socket: net.Socket, timeoutMs: number, decide: (isH2: boolean) => void): void {
  let head = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs).unref();
  // A reset before either server takes the socket must not crash the process.
  const onError = () => socket.destroy();
  const onClose = () => clearTimeout(timer);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const n = Math.min(head.length, h2Preface.length);
    const isH2 = head.subarray(0, n).equals(h2Preface.subarray(0, n));
    if (isH2 && head.length < h2Preface.length) return;
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("error", onError);
    socket.off("close", onClose);
    // The bytes go back into the socket's buffer: the HTTP/2 session drains it
    // when it takes the socket; the HTTP/1 parser needs the stream flowing again.
    socket.pause();
    socket.unshift(head);
    decide(isH2);
    if (!isH2) socket.resume();
  };
  socket.on("error", onError);
  socket.once("close", onClose);
  socket.on("data", onData);
}

/** CORS for the configured browser origins (`*` = any), with Connect's headers. */
export function withCors(origins: string[], next: RequestHandler): RequestHandler {
  if (origins.length === 0) return next;
  const anyOrigin = origins.includes("*");
  return (req, res) => {
    const origin = req.headers.origin;
    if (typeof origin !== "string" || !(anyOrigin || origins.includes(origin))) return next(req, res);
    res.setHeader("Access-Control-Allow-Origin", anyOrigin ? "*" : origin);
    res.setHeader("Vary", "Origin");
    res.setHeader("Access-Control-Expose-Headers", cors.exposedHeaders.join(", "));
    if (req.method === "OPTIONS") {
      res.setHeader("Access-Control-Allow-Methods", cors.allowedMethods.join(", "));
      res.setHeader("Access-Control-Allow-Headers", [...cors.allowedHeaders, "Authorization"].join(", "));
      res.setHeader("Access-Control-Max-Age", "7200");
      res.statusCode = 204;
      res.end();
      return;
    }
    next(req, res);
  };
}
