// The process's logger: JSON lines (pino) for log pipelines, pretty and
// coloured when a person watches the terminal.
import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";
import pinoPretty from "pino-pretty";

export function createLogger(
  opts: { logLevel: string; name?: string },
  /** Where lines go; default stdout (pretty when it is a terminal). */
  destination?: DestinationStream,
): Logger {
  const options: LoggerOptions = {
    level: opts.logLevel,
    base: { service: opts.name ?? "eventide" },
    // Defence in depth: nothing should log a key or a header, but if it does, not in clear.
    redact: { paths: ["authorization", "*.authorization", "apiKey", "*.apiKey", "apiKeys", "*.apiKeys"], censor: "[redacted]" },
  };
  if (destination) return pino(options, destination);
  // A stream in this thread, not a transport worker: lines written just before process.exit are not lost.
  if (process.stdout.isTTY) return pino(options, pinoPretty({ colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service" }));
  return pino(options);
}
