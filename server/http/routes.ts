// Plain-HTTP routes served on the RPC port beside Connect: the web console and
// the original eventide's HTTP/SSE API. A request no route claims goes to Connect.
import type http from "node:http";
import type http2 from "node:http2";
import type { RequestHandler } from "../http-server.js";

export type HttpRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type HttpResponse = http.ServerResponse | http2.Http2ServerResponse;

/** writeHead on either kind of response (their overloads differ in type only, so the union is not callable as such). */
export function writeHead(res: HttpResponse, status: number, headers: http.OutgoingHttpHeaders): void {
  (res as http.ServerResponse).writeHead(status, headers);
}

export interface HttpRoute {
  method: "GET" | "POST" | "HEAD";
  /** Matched against the URL path; named groups become params. */
  path: RegExp;
  handle(req: HttpRequest, res: HttpResponse, params: Record<string, string>, url: URL): void | Promise<void>;
}

/** Tries each route in order; Connect (`fallback`) gets what none matches. */
export function withHttpRoutes(routes: HttpRoute[], fallback: RequestHandler, onError: (err: unknown) => void): RequestHandler {
  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://eventide.invalid");
    for (const route of routes) {
      if (req.method !== route.method && !(route.method === "GET" && req.method === "HEAD")) continue;
      const match = route.path.exec(url.pathname);
      if (!match) continue;
      Promise.resolve(route.handle(req, res, match.groups ?? {}, url)).catch((err) => {
        onError(err);
        if (!res.headersSent) {
          res.statusCode = 500;
          res.setHeader("content-type", "application/json");
          res.end(JSON.stringify({ error: { code: "internal", message: "internal error" } }));
        } else {
          res.end();
        }
      });
      return;
    }
    fallback(req, res);
  };
}
