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

export async function listen(handler: RequestHandler, port: number, host: string, tlsFiles?: TlsFiles): Promise<ListeningServer> {
  const connections = new Connections();
  const tracked = connections.track(handler);
  let listener: net.Server;
  if (tlsFiles) {
    const secure = http2.createSecureServer({ ...readTlsFiles(tlsFiles), allowHTTP1: true }, tracked);
    secure.on("connection", (socket: net.Socket) => connections.add(socket));
    // ALPN chose: "h2", or HTTP/1.1 ("http/1.1", or no ALPN at all).
    secure.on("secureConnection", (socket: tls.TLSSocket) => {
      if (socket.alpnProtocol !== "h2") connections.servesHttp1(socket);
    });
    secure.on("session", (session) => connections.addSession(session));
    listener = secure;
  } else {
    const h1 = http.createServer(tracked as http.RequestListener);
    const h2 = http2.createServer(tracked as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
    h2.on("session", (session) => connections.addSession(session));
    listener = net.createServer((socket) => {
      connections.add(socket);
      sniff(socket, (isH2) => {
        if (!isH2) connections.servesHttp1(socket);
        (isH2 ? h2 : h1).emit("connection", socket);
      });
    });
  }
  await new Promise<void>((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(port, host, () => resolve());
  });
  return {
    port: (listener.address() as net.AddressInfo).port,
    scheme: tlsFiles ? "https" : "http",
    async close(graceMs = defaultGraceMs) {
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      connections.drain();
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

/** The server's connections, so shutdown can ask each to finish, and drop the stragglers. */
class Connections {
  private readonly sockets = new Set<net.Socket>();
  /** HTTP/1.1 sockets → requests in progress on them. */
  private readonly http1 = new Map<net.Socket, number>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private requests = 0;
  private draining = false;

  add(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
  }

  servesHttp1(socket: net.Socket): void {
    this.http1.set(socket, 0);
    socket.once("close", () => this.http1.delete(socket));
  }

  addSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    session.once("close", () => this.sessions.delete(session));
    if (this.draining) session.close();
  }

  /** Counts requests per HTTP/1.1 connection, so a draining server closes each once idle. */
  track(handler: RequestHandler): RequestHandler {
    return (req, res) => {
      this.requests++;
      const socket = req.httpVersionMajor === 1 ? (req.socket as net.Socket) : undefined;
      if (socket && this.http1.has(socket)) {
        this.http1.set(socket, this.http1.get(socket)! + 1);
        if (this.draining) res.setHeader("Connection", "close");
      }
      res.once("close", () => {
        this.requests--;
        if (!socket || !this.http1.has(socket)) return;
        const active = this.http1.get(socket)! - 1;
        this.http1.set(socket, active);
        if (this.draining && active === 0) socket.end();
      });
      handler(req, res);
    };
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

/** Reads enough of the first bytes to tell the HTTP/2 preface from an HTTP/1 request line. */
function sniff(socket: net.Socket, decide: (isH2: boolean) => void): void {
  let head = Buffer.alloc(0);
  // A reset before either server takes the socket must not crash the process.
  const onError = () => socket.destroy();
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const n = Math.min(head.length, h2Preface.length);
    const isH2 = head.subarray(0, n).equals(h2Preface.subarray(0, n));
    if (isH2 && head.length < h2Preface.length) return;
    socket.off("data", onData);
    socket.off("error", onError);
    // The bytes go back into the socket's buffer: the HTTP/2 session drains it
    // when it takes the socket; the HTTP/1 parser needs the stream flowing again.
    socket.pause();
    socket.unshift(head);
    decide(isH2);
    if (!isH2) socket.resume();
  };
  socket.on("error", onError);
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
