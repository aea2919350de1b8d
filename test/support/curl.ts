// curl, for requests Node's clients cannot make: Node's HTTP/2 client refuses to send a
// single-value header such as Authorization twice (fetch joins the values into one).
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface CurlReply {
  status: number;
  /** Response headers and (HTTP/2) trailers, by lowercase name; a repeated one keeps its last value. */
  headers: Record<string, string>;
  body: string;
}

/** `curl -s <args> <url>`, POSTing `body` when given; headers and trailers come back parsed. */
export async function curl(url: string, args: string[], body?: string | Uint8Array, timeoutMs = 10_000): Promise<CurlReply> {
  // The body goes to a file: on stdout it would sit between the headers and the trailers.
  const dir = await mkdtemp(join(tmpdir(), "curl-"));
  try {
    const bodyFile = join(dir, "body");
    const head = await new Promise<string>((resolve, reject) => {
      const child = spawn("curl", ["-s", "--max-time", String(timeoutMs / 1000), "-D", "-", "-o", bodyFile, ...(body === undefined ? [] : ["--data-binary", "@-"]), ...args, url]);
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString("latin1")));
      child.on("error", reject);
      child.on("close", () => resolve(out));
      child.stdin.end(body);
    });
    const [statusLine, ...lines] = head.split("\r\n");
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const text = await readFile(bodyFile, "utf8").catch(() => "");
    return { status: Number(statusLine.split(" ")[1] ?? 0), headers, body: text };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
