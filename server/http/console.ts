// The web console's static files at `/` (built by `npm run build:console`):
// index.html (no-cache) and the content-hashed app-<hash>.js / .css (cached for
// good). Only those names are served, from `dir` itself: no path reaches
// outside it. No auth: the page asks for a key when the RPCs need one.
import { readFile, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { type HttpRequest, type HttpResponse, type HttpRoute, writeHead } from "./routes.js";

const gzipAsync = promisify(gzip);

const contentTypes: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  txt: "text/plain; charset=utf-8",
};

/** The page talks to its own origin only. */
const pageSecurity = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

interface CachedFile {
  mtimeMs: number;
  size: number;
  body: Buffer;
  gzipped: Buffer;
}

export function consoleRoutes(dir: string): HttpRoute[] {
  const root = resolve(dir);
  const cache = new Map<string, CachedFile>();

  /** The file's bytes, read again only when it changed on disk (a rebuild); undefined when missing. */
  async function load(name: string): Promise<CachedFile | undefined> {
    const path = join(root, name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    const cached = cache.get(name);
    if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached;
    const body = await readFile(path);
    const file = { mtimeMs: info.mtimeMs, size: info.size, body, gzipped: await gzipAsync(body) };
    cache.set(name, file);
    return file;
  }

  return [
    {
      method: "GET",
      path: /^\/(?:index\.html)?$/,
      async handle(req, res) {
        const file = await load("index.html");
        if (!file) return send(req, res, 503, "html", Buffer.from(notBuiltPage(root)), { ...pageSecurity, "cache-control": "no-store", "retry-after": "5" });
        send(req, res, 200, "html", file.body, { ...pageSecurity, "cache-control": "no-cache" });
      },
    },
    {
      method: "GET",
      // esbuild's content hash: a changed bundle gets a new name, so a cached one is never stale.
      path: /^\/(?<name>app-[A-Z0-9]{4,32}\.(?:js|css))$/,
      async handle(req, res, params) {
        const file = await load(params.name);
        const ext = params.name.endsWith(".js") ? "js" : "css";
        if (!file) return send(req, res, 404, "txt", Buffer.from("not found\n"), { "cache-control": "no-store" });
        const acceptsGzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
        send(req, res, 200, ext, acceptsGzip ? file.gzipped : file.body, {
          "cache-control": "public, max-age=31536000, immutable",
          "x-content-type-options": "nosniff",
          vary: "accept-encoding",
          ...(acceptsGzip ? { "content-encoding": "gzip" } : {}),
        });
      },
    },
  ];
}

function send(req: HttpRequest, res: HttpResponse, status: number, ext: string, body: Buffer, headers: Record<string, string>): void {
  writeHead(res, status, { ...headers, "content-type": contentTypes[ext], "content-length": String(body.length) });
  // HEAD: the same headers, no body.
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

function notBuiltPage(dir: string): string {
  const escaped = dir.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>eventide console: not built</title></head>
<body style="font: 15px/1.5 system-ui, sans-serif; max-width: 40em; margin: 4em auto">
<h1>The eventide console is not built</h1>
<p>No console bundle in <code>${escaped}</code>. Build it with <code>npm run build:console</code>
(<code>npm start</code> does it first) and reload this page, or point <code>EVENTIDE_CONSOLE_DIR</code> at a built console.</p>
<p>The RPC API on this port works without it.</p>
</body></html>
`;
}
