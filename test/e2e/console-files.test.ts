// The console's static files on the RPC port, over HTTP/1.1 and HTTP/2:
// index.html revalidated on every load, the hashed bundle cached for good
// (gzipped when asked), nothing else from the directory, and a page that says
// how to build the console when it is missing.
import test from "ava";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildConsole } from "../../scripts/build-console.js";
import { startTestServer } from "../support/server.js";

/** GET or HEAD over HTTP/2 (prior knowledge, as gRPC clients connect). */
async function h2Request(baseUrl: string, method: string, path: string, headers: Record<string, string> = {}) {
  const session = http2.connect(baseUrl);
  try {
    return await new Promise<{ headers: http2.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = session.request({ ":method": method, ":path": path, ...headers });
      const chunks: Buffer[] = [];
      let responseHeaders: http2.IncomingHttpHeaders = {};
      req.on("response", (h) => (responseHeaders = h));
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => resolve({ headers: responseHeaders, body: Buffer.concat(chunks) }));
      req.on("error", reject);
      req.end();
    });
  } finally {
    session.close();
  }
}

test("the console is served over HTTP/1.1 and HTTP/2, only its own files, and says how to build it when missing", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "eventide-console-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const built = await buildConsole(dir);
  t.deepEqual((await readdir(dir)).sort(), [...built.files].sort());
  const [, js, css] = built.files;
  t.regex(js, /^app-[A-Z0-9]+\.js$/);
  t.regex(css, /^app-[A-Z0-9]+\.css$/);
  // A file beside the bundle that is not part of it.
  await writeFile(join(dir, "secret.txt"), "not for the web");
  const server = await startTestServer("redis", { EVENTIDE_CONSOLE_DIR: dir });
  t.teardown(() => server.close());
  const url = (path: string) => `${server.baseUrl}${path}`;

  const index = await fetch(url("/"));
  t.is(index.status, 200);
  t.is(index.headers.get("content-type"), "text/html; charset=utf-8");
  t.is(index.headers.get("cache-control"), "no-cache");
  t.regex(index.headers.get("content-security-policy") ?? "", /default-src 'self'/);
  const html = await index.text();
  t.true(html.includes(`src="${js}"`) && html.includes(`href="${css}"`), "index.html names the hashed bundle");
  t.is((await fetch(url("/index.html"))).status, 200);

  const bundle = await fetch(url(`/${js}`));
  t.is(bundle.status, 200);
  t.is(bundle.headers.get("content-type"), "text/javascript; charset=utf-8");
  t.is(bundle.headers.get("cache-control"), "public, max-age=31536000, immutable");
  t.true((await bundle.text()).length > 10_000);
  const styles = await fetch(url(`/${css}`));
  t.is(styles.headers.get("content-type"), "text/css; charset=utf-8");
  await styles.arrayBuffer();
  const head = await fetch(url(`/${js}`), { method: "HEAD" });
  t.is(head.status, 200);
  t.true(Number(head.headers.get("content-length")) > 0);

  // HTTP/2: the same files, gzipped when the client accepts it; HEAD sends no body.
  const h2Index = await h2Request(server.baseUrl, "GET", "/");
  t.is(Number(h2Index.headers[":status"]), 200);
  t.is(h2Index.body.toString(), html);
  const h2Bundle = await h2Request(server.baseUrl, "GET", `/${js}`, { "accept-encoding": "gzip" });
  t.is(h2Bundle.headers["content-encoding"], "gzip");
  t.is(Number(h2Bundle.headers["content-length"]), h2Bundle.body.length);
  const h2Head = await h2Request(server.baseUrl, "HEAD", `/${js}`);
  t.is(Number(h2Head.headers[":status"]), 200);
  t.is(h2Head.body.length, 0);

  // Only the bundle's own names: nothing else in the directory, nothing outside it.
  for (const path of ["/secret.txt", "/app-ZZZZZZZZ.js", "/../package.json", "/%2e%2e/package.json", "/app-X/../../package.json"]) {
    const res = await fetch(url(path));
    t.is(res.status, 404, path);
    t.false((await res.text()).includes("not for the web"), path);
  }

  // Not built: a page that says what to run, and the RPCs still work.
  await rm(dir, { recursive: true, force: true });
  const missing = await fetch(url("/"));
  t.is(missing.status, 503);
  t.regex(await missing.text(), /npm run build:console/);
  t.truthy((await server.turns("connect-http1").listThreads({})).threads);
});
