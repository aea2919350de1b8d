// `npm run bench`: starts a real eventide server in this process for each
// scenario and hot tier, drives it over gRPC on 127.0.0.1, prints a table.
// Exits 1 when an event was lost, duplicated or reordered, or a scenario failed;
// a missed performance goal is reported, not fatal.
import { parseOptions, scenarios, usage } from "./plan.js";
import { environment, formatValue, type Row, table } from "./report.js";
import { startServerUnderTest } from "./server-under-test.js";

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
  process.stdout.write(`${environment(commandLine, redisUrl)}\n\n`);

  const rows: Row[] = [];
  const failures: string[] = [];
  for (const tier of options.tiers) {
    for (const scenario of scenarios(options.quick)) {
      process.stdout.write(`${tier} / ${scenario.name} … `);
      const server = await startServerUnderTest(tier, redisUrl);
      try {
        const result = await scenario.run(server.baseUrl);
        rows.push(...result.measurements.map((m) => ({ ...m, tier })));
        failures.push(...result.failures.map((f) => `${tier}: ${f}`));
        const headline = result.measurements.find((m) => m.goal) ?? result.measurements[0];
        process.stdout.write(`${headline ? `${headline.metric} ${formatValue(headline)}` : "done"}${result.failures.length ? " (FAILURES)" : ""}\n`);
      } catch (err) {
        failures.push(`${tier}: ${scenario.name} crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        process.stdout.write("crashed\n");
      } finally {
        await server.close();
      }
    }
  }

  process.stdout.write(`\n${table(rows)}\n`);
  if (failures.length) {
    process.stdout.write(`\nCORRECTNESS FAILURES:\n${failures.map((f) => `  ${f}`).join("\n")}\n`);
    return 1;
  }
  process.stdout.write(`\nno lost, duplicated or reordered events\n`);
  return 0;
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
