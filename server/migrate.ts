// `npm run migrate`: applies pending migrations to the configured warm tier and exits.
// (Every role also migrates at start-up; this is for deploy pipelines.)
import { pino } from "pino";
import { loadConfig } from "./config.js";
import { openWarm } from "./tiers/open-tiers.js";

const config = loadConfig();
const log = pino({ level: config.logLevel, base: { service: "eventide-migrate" } });
const closers: (() => Promise<void>)[] = [];
try {
  const { describe } = await openWarm(config, log, closers);
  log.info({ warm: describe }, "migrations are up to date");
} finally {
  for (const close of closers.reverse()) await close();
}
