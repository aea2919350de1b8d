// One cleartext port for every client: HTTP/2 (gRPC, gRPC-Web, Connect) and
// HTTP/1.1 (browsers' Connect and plain HTTP). Browsers never speak cleartext
// HTTP/2, so each connection's first bytes decide which server takes it.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { cors } from "@connectrpc/connect";

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface ListeningServer {
  port: number;
  close(): Promise<void>;
}

const h2Preface = Buffer.from("PRI * HTTP/2.0");

export async function listen(handler: RequestHandler, port: number, host: string): Promise<ListeningServer> {
  const h1 = http.createServer(handler as http.RequestListener);
  const h2 = http2.createServer(handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const sockets = new Set<net.Socket>();
  const front = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    sniff(socket, (isH2) => (isH2 ? h2 : h1).emit("connection", socket));
  });
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(port, host, () => resolve());
  });
  return {
    port: (front.address() as net.AddressInfo).port,
    async close() {
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      // Open HTTP/2 sessions and keep-alive sockets would hold close() forever.
      for (const session of sessions) session.close();
      h1.closeIdleConnections();
      setTimeout(() => {
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
      }, 2_000).unref();
      await closed;
    },
  };
}

/** Reads enough of the first bytes to tell the HTTP/2 preface from an HTTP/1 request line. */
function sniff(socket: net.Socket, decide: (isH2: boolean) => void): void {
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const n = Math.min(head.length, h2Preface.length);
    const isH2 = head.subarray(0, n).equals(h2Preface.subarray(0, n));
    if (isH2 && head.length < h2Preface.length) return;
    socket.off("data", onData);
    // The bytes go back into the socket's buffer: the HTTP/2 session drains it
    // when it takes the socket; the HTTP/1 parser needs the stream flowing again.
    socket.pause();
    socket.unshift(head);
    decide(isH2);
    if (!isH2) socket.resume();
  };
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
