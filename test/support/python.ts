// Python processes on Debian's python3 (which has python3-grpcio and
// python3-protobuf; the pyenv python on PATH has neither), with the client
// package clients/python importable, that report what they do as JSON lines.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";
import { exited } from "./child.js";

export const python = "/usr/bin/python3";
export const pythonClientDir = fileURLToPath(new URL("../../clients/python", import.meta.url));

export type Line = Record<string, unknown>;

export interface PythonChild {
  child: ChildProcess;
  /** The JSON lines printed on stdout so far. */
  lines: Line[];
  /** Everything on stderr so far (tracebacks, logs). */
  stderr(): string;
  /** Resolves with the first line `match` accepts (looking at lines already printed too). */
  waitForLine(match: (line: Line) => boolean, timeoutMs?: number): Promise<Line>;
  /** Resolves with the exit code. */
  exit(): Promise<number | null>;
}

/** Runs `/usr/bin/python3 <args>` in clients/python with the package on PYTHONPATH. */
export function spawnPython(args: string[], env: Record<string, string> = {}): PythonChild {
  const child = spawn(python, args, {
    cwd: pythonClientDir,
    env: { ...process.env, PYTHONPATH: pythonClientDir, PYTHONDONTWRITEBYTECODE: "1", PYTHONUNBUFFERED: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Line[] = [];
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    let newline: number;
    while ((newline = stdout.indexOf("\n")) >= 0) {
      const text = stdout.slice(0, newline).trim();
      stdout = stdout.slice(newline + 1);
      if (text) lines.push(text.startsWith("{") ? (JSON.parse(text) as Line) : { text });
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  return {
    child,
    lines,
    stderr: () => stderr,
    async waitForLine(match, timeoutMs = 30_000) {
      for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
        const line = lines.find(match);
        if (line) return line;
        if (child.exitCode !== null) break;
        await delay(20);
      }
      const found = lines.find(match);
      if (found) return found;
      throw new Error(`no such line from python ${args.join(" ")} (exit ${child.exitCode}):\n${JSON.stringify(lines.slice(-20))}\n${stderr}`);
    },
    async exit() {
      await exited(child);
      return child.exitCode;
    },
  };
}
