// The process's logger: JSON lines (pino) for log pipelines, pretty and
// coloured when a person watches the terminal.
import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";
import { createRequire } from "node:module";

export function createLogger(
  opts: { logLevel: string; name?: string },
  /** Where lines go; default stdout (pretty when it is a terminal). */
  destination?: DestinationStream,
): Logger {
  const options: LoggerOptions = {
    level: opts.logLevel,
    base: { service: opts.name ?? "eventide" },
    // No `redact`: it doubles the cost of a line (one a call), and no line is built from
    // headers or config; the logs test checks that no key ever shows up.
  };
  if (destination) return pino(options, destination);
  // A stream in this thread, not a transport worker: lines written just before process.exit are not lost.
  if (process.stdout.isTTY) {
    // Required only here: pino-pretty adds ~10 MB to a process's memory, and services log JSON.
    const pinoPretty = createRequire(import.meta.url)("pino-pretty") as typeof import("pino-pretty");
    return pino(options, pinoPretty({ colorize: true, singleLine: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service" }));
  }
  return pino(options);
}
