// `npm run bench`: for each tier, starts a real eventide server as a child
// process on a random port of 127.0.0.1 (on Redis the server role alone, its
// persister in a second child), drives it over gRPC from this process (and
// h2load), runs the in-process persister/archiver scenarios beside it, then
// the same server scenarios against each floor (--floor), and prints a
// table, the server CPU per unit of work beside the floors', and the goals.
// Exits 1 when an event was lost, duplicated or reordered, a server died, or
// a scenario crashed; a missed goal, a failed call or an overload is
// reported, not fatal.
import { cleanUpAndExit } from "./cleanup.js";
import { waitForBacklog } from "./persister-backlog.js";
import { type BenchContext, type BenchOptions, parseOptions, type Scenario, scenarios, usage } from "./plan.js";
import { goalsTable } from "./goals.js";
import { cpuComparison, environment, formatValue, layouts, type Row, table } from "./report.js";
import { closeAndReport, startServerUnderTest } from "./server-under-test.js";
import { freshTierEnv, isFloor, type Services, type Tier } from "./tier-env.js";

/**
 * Lightest first: the heavy scenarios leave garbage and a big hot tier behind
 * them (lookup, light, runs on a server of its own before any of them). The
 * in-process ones come after the server's own, then the ones that start
 * servers of their own: dispatch, and cold replay last.
 */
const runOrder = ["lookup", "idle", "latency", "tail", "single", "batch", "replay", "persist", "lag", "dispatch", "cold-replay"];
/** How long a scenario waits for the shared server's persister to finish the previous one's backlog. */
const settleTimeoutMs = 60_000;

async function main(): Promise<number> {
  // The in-process S3 client would warn that future SDKs need Node 22 (the tests silence it the same way).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${usage}\n`);
    return 2;
  }
  const services: Services = {
    redisUrl: process.env.REDIS_URL || "redis://127.0.0.1:6379",
    databaseUrl: process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/test",
  };
  const commandLine = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const setting = environment(commandLine, services);
  process.stdout.write(`${setting}\n\n`);

  const planned = scenarios(options);
  const selected = planned
    .filter((s) => options.only.length === 0 || options.only.includes(s.key))
    .sort((a, b) => runOrder.indexOf(a.key) - runOrder.indexOf(b.key));
  const rows: Row[] = [];
  const failures: string[] = [];
  const notes: string[] = [];
  const started = Date.now();
  for (const tier of options.tiers) {
    const outcome = await runTier(tier, selected, services, options);
    rows.push(...outcome.rows);
    failures.push(...outcome.failures);
    notes.push(...outcome.notes);
  }

  // The table follows the plan's order, tier by tier.
  const position = (r: Row) => options.tiers.indexOf(r.tier) * 100 + planned.findIndex((s) => s.name === r.scenario);
  rows.sort((a, b) => position(a) - position(b));
  const used = [...new Set(rows.filter((r) => r.unit === "text").map((r) => r.text ?? ""))];
  process.stdout.write(`\n${setting}\nwall time ${((Date.now() - started) / 1000).toFixed(0)} s\n\n${table(rows)}\n`);
  process.stdout.write(`\nprocess layouts:\n${used.map((l) => `  ${l.padEnd(22)} ${layouts[l] ?? ""}`).join("\n")}\n`);
  const comparison = cpuComparison(rows);
  if (comparison) process.stdout.write(`\nserver CPU per unit of work (µs), eventide beside the floors on the same load:\n${comparison}\n`);
  process.stdout.write(`\ngoals:\n${goalsTable(rows, options.quick)}\n`);
  if (options.profileDir) process.stdout.write(`\nCPU profiles of the server children: ${options.profileDir}\n`);
  if (notes.length) process.stdout.write(`\nNOTES:\n${notes.map((n) => `  ${n}`).join("\n")}\n`);
  if (failures.length) {
    process.stdout.write(`\nCORRECTNESS FAILURES:\n${failures.map((f) => `  ${f}`).join("\n")}\n`);
    return 1;
  }
  process.stdout.write("\nno lost, duplicated or reordered events\n");
  return 0;
}

/** One server child per tier for all its scenarios; each scenario works on threads (or tiers) of its own. */
async function runTier(tier: Tier, selected: Scenario[], services: Services, options: BenchOptions) {
  const rows: Row[] = [];
  const failures: string[] = [];
  const notes: string[] = [];
  if (isFloor(tier)) selected = selected.filter((s) => s.floor);
  if (selected.length === 0) return { rows, failures, notes };
  const tiers = freshTierEnv(tier, services);
  // On Redis the persister runs in a child of its own, so the server child's CPU is the server role's.
  const split = tier === "redis";
  const server = await startServerUnderTest({
    tiers,
    ownsTiers: true,
    logLevel: options.logLevel,
    profileDir: options.profileDir,
    roles: split ? "server" : "server,persister",
  });
  const persister = split
    ? await startServerUnderTest({ tiers, ownsTiers: false, logLevel: options.logLevel, profileDir: options.profileDir, roles: "persister" }).catch(
        async (err: unknown) => {
          await server.close();
          throw err;
        },
      )
    : undefined;
  process.stdout.write(
    `${tier}: server child pid ${server.pid} on ${server.baseUrl}${persister ? `, persister child pid ${persister.pid}` : ""} (bench pid ${process.pid})\n`,
  );
  const ctx: BenchContext = { tier, server, services, logLevel: options.logLevel, profileDir: options.profileDir };
  try {
    for (const scenario of selected) {
      if (server.died() || persister?.died()) break;
      const settled = await waitForBacklog(server.tiers, settleTimeoutMs);
      if (settled === undefined) notes.push(`${tier}: ${scenario.name} started with the server's persister still behind after ${settleTimeoutMs} ms`);
      else if (settled > 1_000) notes.push(`${tier}: waited ${(settled / 1000).toFixed(1)} s for the server's persister to catch up before ${scenario.name}`);
      process.stdout.write(`${tier} / ${scenario.name} … `);
      const started = Date.now();
      try {
        const result = await scenario.run(ctx);
        rows.push(...result.measurements.map((m) => ({ ...m, tier })));
        failures.push(...result.failures.map((f) => `${tier}: ${f}`));
        notes.push(...result.notes.map((n) => `${tier}: ${n}`));
        const headline = result.measurements.find((m) => m.goal) ?? result.measurements.find((m) => m.unit !== "text");
        const took = `${((Date.now() - started) / 1000).toFixed(1)} s`;
        process.stdout.write(`${headline ? `${headline.metric} ${formatValue(headline)}` : "done"}${result.failures.length ? " (FAILURES)" : ""} [${took}]\n`);
      } catch (err) {
        failures.push(`${tier}: ${scenario.name} crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        process.stdout.write("crashed\n");
      }
    }
  } finally {
    // The persister first: the server owns the tiers and drops them when it is closed.
    if (persister) await closeAndReport(persister, `${tier}: the persister`, failures, notes);
    await closeAndReport(server, `${tier}: the server`, failures, notes);
  }
  return { rows, failures, notes };
}

process.once("SIGINT", () => void cleanUpAndExit(130));
main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
