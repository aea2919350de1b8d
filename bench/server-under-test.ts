// The eventide server under test, in a child process of its own (so the load
// generator never shares its event loop, and its CPU can be read from /proc):
// `node --import tsx server/main.ts server` (or other roles) on a free port of
// 127.0.0.1, over the tiers `TierEnv` names; or one of the floors.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { rm } from "node:fs/promises";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { onInterrupt, runOnce } from "./cleanup.js";
import { sleep } from "./clock.js";
import { warningsNote } from "./result.js";
import { type FloorTier, isFloor, type Tier, type TierEnv } from "./tier-env.js";

export type { Tier } from "./tier-env.js";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const serverMain = join(repoRoot, "server", "main.ts");
const floorMains: Record<FloorTier, string> = {
  "floor-http2": join(repoRoot, "bench", "floor-http2.ts"),
  "floor-grpcjs": join(repoRoot, "bench", "floor-grpc-js.ts"),
  "floor-connect": join(repoRoot, "bench", "floor-server.ts"),
};
/** The server's default (EVENTIDE_HEARTBEAT_MS is not set). */
const heartbeatMs = 15_000;
const startTimeoutMs = 60_000;
const stopTimeoutMs = 5_000;

export interface ServerOptions {
  tiers: TierEnv;
  /** Drop the tiers' keys and schema on close; false when the caller owns them. */
  ownsTiers: boolean;
  /** The server's LOG_LEVEL; its warnings and errors go to stderr and into `warnings()`. */
  logLevel: string;
  /** Write a V8 CPU profile of the server here when it exits (node --cpu-prof). */
  profileDir?: string;
  roles?: string;
}

export interface ServerUnderTest {
  baseUrl: string;
  tier: Tier;
  pid: number;
  /** The env the server runs on: open the same tiers in-process with it. */
  tiers: TierEnv;
  /** After this much silence a followed tail polls storage: a missed live event arrives by then. */
  heartbeatMs: number;
  /** The server's log lines at warn level and above, so far. */
  warnings(): string[];
  /** Set when the process ended before close() was called. */
  died(): string | undefined;
  /** SIGTERM, wait (SIGKILL after 5 s), then drop the tiers' data if owned; says how it ended. */
  close(): Promise<string>;
}

export async function startServerUnderTest(opts: ServerOptions): Promise<ServerUnderTest> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const roles = opts.roles ?? "server,persister";
  const nodeArgs = opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.profileDir}`] : [];
  const { tier } = opts.tiers;
  const program = isFloor(tier) ? [floorMains[tier]] : [serverMain, roles];
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", ...program], {
    cwd: repoRoot,
    env: {
      ...inheritedEnv(),
      ...opts.tiers.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: opts.logLevel,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = watchOutput(child);
  let closing = false;
  let died: string | undefined;
  const exited = once(child, "exit").then(
    ([code, signal]) => {
      const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
      if (!closing) died = `server ${child.pid} ${how} during the run; its last output:\n${output.tail()}`;
      return how;
    },
    (err) => {
      died = `server could not be spawned: ${String(err)}`;
      return "not spawned";
    },
  );
  const removeTemp = async () => {
    // On EVENTIDE_DATA_DIR=memory: the directory cold store is named after the server's pid.
    await rm(join(tmpdir(), `eventide-archive-${child.pid}`), { recursive: true, force: true });
  };
  const stop = runOnce(async (): Promise<string> => {
    closing = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = sleep(stopTimeoutMs).then(() => "timeout");
      if ((await Promise.race([exited, timer])) === "timeout") child.kill("SIGKILL");
    }
    const how = await exited;
    await removeTemp();
    if (opts.ownsTiers) await opts.tiers.drop();
    return how;
  });
  const forget = onInterrupt(async () => void (await stop()));

  try {
    // A child of worker roles only (a persister beside a server) listens on no port.
    if (isFloor(tier) || roles.split(",").includes("server")) await waitUntilServing(baseUrl, port, () => died);
  } catch (err) {
    forget();
    const how = await stop();
    throw new Error(`server did not start (${how}): ${err instanceof Error ? err.message : String(err)}\n${output.tail()}`);
  }
  return {
    baseUrl,
    tier: opts.tiers.tier,
    pid: child.pid!,
    tiers: opts.tiers,
    heartbeatMs,
    warnings: () => [...output.warnings],
    died: () => died,
    async close() {
      forget();
      return stop();
    },
  };
}

/**
 * Closes a child and reports how it went, as `who` (e.g. "redis: the server"):
 * dying before close() is a failure; an unclean exit on SIGTERM and the
 * warnings it logged are notes.
 */
export async function closeAndReport(child: ServerUnderTest, who: string, failures: string[], notes: string[]): Promise<void> {
  const how = await child.close();
  const died = child.died();
  if (died) failures.push(`${who}: ${died}`);
  else if (how !== "exited with code 0") notes.push(`${who} ${how} on SIGTERM`);
  notes.push(...warningsNote(who, child.warnings()));
}

/** A child started for `work` alone (fresh process, fresh tiers), always closed and reported as closeAndReport does. */
export async function withOwnServer<T>(
  opts: ServerOptions,
  who: string,
  failures: string[],
  notes: string[],
  work: (server: ServerUnderTest) => Promise<T>,
): Promise<T> {
  const server = await startServerUnderTest(opts);
  try {
    return await work(server);
  } finally {
    await closeAndReport(server, who, failures, notes);
  }
}

/** The bench's environment minus anything that would point the server elsewhere. */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(EVENTIDE_|S3_|REDIS_URL$|DATABASE_URL$|PORT$|HOST$|LOG_LEVEL$)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/** A port the OS had free a moment ago (the server binds it right after). */
async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, "127.0.0.1");
  await once(probe, "listening");
  const address = probe.address();
  probe.close();
  await once(probe, "close");
  if (!address || typeof address === "string") throw new Error("no port from the OS");
  return address.port;
}

async function waitUntilServing(baseUrl: string, port: number, died: () => string | undefined): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    const gone = died();
    if (gone) throw new Error(gone);
    if (await accepts(port)) {
      const sessionManager = new Http2SessionManager(baseUrl);
      try {
        const health = createClient(Health, createGrpcTransport({ baseUrl, sessionManager }));
        const res = await health.check({ service: "" }, { timeoutMs: 2_000 });
        if (res.status === ServingStatus.SERVING) return;
        lastError = `health status ${ServingStatus[res.status]}`;
      } catch (err) {
        lastError = String(err);
      } finally {
        sessionManager.abort();
      }
    }
    await sleep(100);
  }
  throw new Error(`not serving after ${startTimeoutMs} ms (${lastError || "port closed"})`);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/**
 * The server logs pino JSON to stdout (and prints a banner there): log lines
 * at warn and above go to our stderr and are kept; anything on its stderr too.
 * The last lines are kept to explain a failed start.
 */
function watchOutput(child: ChildProcess) {
  const recent: string[] = [];
  const warnings: string[] = [];
  const keep = (line: string) => {
    recent.push(line);
    if (recent.length > 30) recent.shift();
  };
  createInterface({ input: child.stdout! }).on("line", (line) => {
    keep(line);
    if (!line.startsWith("{")) return; // the banner
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: unknown };
      if ((entry.level ?? 0) < 40) return;
      warnings.push(`${entry.msg ?? ""}${entry.err ? ` (${String(entry.err)})` : ""}`);
    } catch {
      return;
    }
    process.stderr.write(`[server ${child.pid}] ${line}\n`);
  });
  createInterface({ input: child.stderr! }).on("line", (line) => {
    keep(line);
    warnings.push(line);
    process.stderr.write(`[server ${child.pid}] ${line}\n`);
  });
  return { warnings, tail: () => recent.join("\n") };
}
