// Entry point: reads the config, opens the tiers, starts the server, and
// shuts everything down on SIGINT/SIGTERM.
import { pino } from "pino";
import { startServer } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { openTiers } from "./tiers/open-tiers.js";

async function main(): Promise<void> {
  const config = loadConfig();
  const log = pino({ level: config.logLevel, base: { service: "eventide" } });
  const tiers = await openTiers(config, log);
  const server = await startServer(config, tiers, log);
  log.info({ port: server.port, tiers: tiers.describe }, "eventide is serving");
  printBanner(server.port, tiers.describe);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    await server.close();
    await tiers.close();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

function printBanner(port: number, tiers: Record<string, string>): void {
  const url = `http://127.0.0.1:${port}`;
  const curl = `npx buf curl --protocol grpc --http2-prior-knowledge`;
  process.stdout.write(`
eventide is up on ${url} (gRPC, gRPC-Web and Connect on one port)
  tiers: ${Object.entries(tiers).map(([k, v]) => `${k}=${v}`).join(", ")}
  auth:  off (every caller is tenant "default")

Try it (in another terminal, from this folder):
  ${curl} --list-methods ${url}
  ${curl} -d '{"input":{"text":"hello"}}' ${url}/eventide.v1.TurnService/SubmitTurn
  ${curl} -d '{"thread_id":"<thread.threadId from above>","follow":true}' ${url}/eventide.v1.EventService/TailEvents
  ${curl} -d '{"thread_id":"<id>","events":[{"type":"message.delta","payload":{"delta":"hi"}}]}' ${url}/eventide.v1.EventService/AppendEvents

`);
}

main().catch((err) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`eventide: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`eventide failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
