// `npm run bench`: starts a real eventide server in this process for each hot
// tier, drives it over gRPC on 127.0.0.1, and prints a table. Exits 1 when an
// event was lost, duplicated or reordered, or a scenario crashed; a missed
// goal, a failed call or an overload is reported, not fatal.
import { parseOptions, type Scenario, scenarios, usage } from "./plan.js";
import { environment, formatValue, type Row, table } from "./report.js";
import { startServerUnderTest, type Tier } from "./server-under-test.js";

/** Lightest first: the heavy scenarios leave garbage and a big hot tier behind them. */
const runOrder = ["latency", "tail", "single", "batch"];

async function main(): Promise<number> {
  let options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${usage}\n`);
    return 2;
  }
  const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6379";
  const commandLine = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const setting = environment(commandLine, redisUrl);
  process.stdout.write(`${setting}\n\n`);

  const planned = scenarios(options);
  const selected = planned
    .filter((s) => options.only.length === 0 || options.only.includes(s.key))
    .sort((a, b) => runOrder.indexOf(a.key) - runOrder.indexOf(b.key));
  const rows: Row[] = [];
  const failures: string[] = [];
  const notes: string[] = [];
  for (const tier of options.tiers) {
    const outcome = await runTier(tier, selected, redisUrl, options.logLevel);
    rows.push(...outcome.rows);
    failures.push(...outcome.failures);
    notes.push(...outcome.notes);
  }

  // The table follows the plan's order (the order of the brief), tier by tier.
  const position = (r: Row) => options.tiers.indexOf(r.tier) * 100 + planned.findIndex((s) => s.name === r.scenario);
  rows.sort((a, b) => position(a) - position(b));
  process.stdout.write(`\n${setting}\n\n${table(rows)}\n`);
  if (notes.length) process.stdout.write(`\nNOTES:\n${notes.map((n) => `  ${n}`).join("\n")}\n`);
  if (failures.length) {
    process.stdout.write(`\nCORRECTNESS FAILURES:\n${failures.map((f) => `  ${f}`).join("\n")}\n`);
    return 1;
  }
  process.stdout.write("\nno lost, duplicated or reordered events\n");
  return 0;
}

/** One server per tier for all its scenarios; each scenario works on threads of its own. */
async function runTier(tier: Tier, selected: Scenario[], redisUrl: string, logLevel: string) {
  const rows: Row[] = [];
  const failures: string[] = [];
  const notes: string[] = [];
  const server = await startServerUnderTest(tier, redisUrl, logLevel);
  try {
    for (const scenario of selected) {
      process.stdout.write(`${tier} / ${scenario.name} … `);
      try {
        const result = await scenario.run(server);
        rows.push(...result.measurements.map((m) => ({ ...m, tier })));
        failures.push(...result.failures.map((f) => `${tier}: ${f}`));
        notes.push(...result.notes.map((n) => `${tier}: ${n}`));
        const headline = result.measurements.find((m) => m.goal) ?? result.measurements[0];
        process.stdout.write(`${headline ? `${headline.metric} ${formatValue(headline)}` : "done"}${result.failures.length ? " (FAILURES)" : ""}\n`);
      } catch (err) {
        failures.push(`${tier}: ${scenario.name} crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        process.stdout.write("crashed\n");
      }
    }
  } finally {
    await server.close();
  }
  return { rows, failures, notes };
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
