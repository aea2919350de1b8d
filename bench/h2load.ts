// h2load (Debian's nghttp2-client), the C HTTP/2 load generator: a few µs of
// CPU a call where the cheapest Node client costs tens. Every call of one
// h2load process sends the same body, so an append load runs one process per
// connection, each with the request for its own thread (`-c 1 -m streams`):
// one thread per connection, as the Node generator does, and appends on
// different threads never wait for each other. h2load sees HTTP statuses
// only (a gRPC error is an HTTP 200 with grpc-status in the trailers), so
// the scenario checks the threads themselves afterwards.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nowMs } from "./clock.js";
import type { LoadRun } from "./wire-append-client.js";

let found: string | null | undefined;

/** h2load's version line when it is installed (on PATH), else undefined. */
export function h2loadVersion(): string | undefined {
  if (found === undefined) {
    const probe = spawnSync("h2load", ["--version"], { encoding: "utf8" });
    found = probe.status === 0 ? probe.stdout.trim() : null;
  }
  return found ?? undefined;
}

export interface H2loadParams {
  baseUrl: string;
  path: string;
  /** One request frame per connection: each connection's process sends its own. */
  frames: Buffer[];
  callsPerConnection: number;
  /** Concurrent streams per connection. */
  streams: number;
}

/** Runs one h2load process per connection at once; latencies come from their --log-file. */
export async function runH2load(p: H2loadParams): Promise<LoadRun> {
  const dir = await mkdtemp(join(tmpdir(), "eventide-h2load-"));
  const run: LoadRun = { latenciesMs: [], failed: 0, errors: [], seconds: 0 };
  try {
    const started = nowMs();
    const outputs = await Promise.all(
      p.frames.map(async (frame, i) => {
        const body = join(dir, `body-${i}.bin`);
        const log = join(dir, `log-${i}.tsv`);
        await writeFile(body, frame);
        const args = ["-n", String(p.callsPerConnection), "-c", "1", "-m", String(p.streams), "-d", body];
        args.push("-H", "content-type: application/grpc", "-H", "te: trailers", `--log-file=${log}`, `${p.baseUrl}${p.path}`);
        const child = spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
        // 'close', not 'exit': the summary may still be in the pipe when the process exits.
        const [code] = (await once(child, "close")) as [number | null];
        return { output, code, log: await readFile(log, "utf8").catch(() => "") };
      }),
    );
    run.seconds = (nowMs() - started) / 1000;
    for (const { output, code, log } of outputs) {
      // Columns: start (µs since the epoch), HTTP status, µs until the end of the response.
      for (const line of log.split("\n")) {
        const [, status, us] = line.split("\t");
        if (status === "200") run.latenciesMs.push(Number(us) / 1000);
      }
      const succeeded = Number(/(\d+) succeeded/.exec(output)?.[1] ?? 0);
      const failed = p.callsPerConnection - succeeded;
      run.failed += failed;
      if ((failed > 0 || code !== 0) && run.errors.length < 3) run.errors.push(`h2load (exit ${code}): ${/requests:.*$/m.exec(output)?.[0] ?? output.slice(-300)}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return run;
}
