// The README's TypeScript examples (clients/typescript/examples/) run as
// users would run them, against a real server on the Redis tier: the agent
// streams a reply and completes the turn, the tail prints it, and the agent
// exits 0 on SIGTERM.
import test from "ava";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { TurnStatus } from "../../gen/eventide/v1/resources_pb.js";
import { exited, kill } from "../support/child.js";
import { startTestServer, waitForTurnStatus } from "../support/server.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const example = (name: string, args: string[]) =>
  spawn(process.execPath, ["--import", "tsx", `clients/typescript/examples/${name}.ts`, ...args], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });

test("the example agent streams a reply the example tail prints; SIGTERM ends the agent with exit code 0", async (t) => {
  t.timeout(120_000);
  const server = await startTestServer("redis");
  t.teardown(() => server.close());
  const agent = example("agent", [server.baseUrl, "example-agent"]);
  t.teardown(() => kill(agent));

  const text = "hello from the readme";
  const { thread, turn } = await server.turns().submitTurn({ input: { text } });
  const tail = example("tail", [server.baseUrl, thread!.threadId]);
  t.teardown(() => kill(tail));
  let printed = "";
  tail.stdout!.setEncoding("utf8");
  const sawCompletion = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the tail printed no turn.completed within 60 s:\n${printed}`)), 60_000);
    tail.stdout!.on("data", (chunk: string) => {
      printed += chunk;
      if (printed.includes(" turn.completed ")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });

  const done = await waitForTurnStatus(server, turn!.turnId, TurnStatus.COMPLETED, 60_000);
  const reply = `You said: ${text}`;
  t.deepEqual(done.output, { words: reply.split(" ").length });
  const log = (await server.events().listEvents({ threadId: thread!.threadId, pageSize: 1000 })).events;
  t.is(log.filter((e) => e.type === "message.delta").map((e) => String(e.payload!.delta)).join(""), reply);

  await sawCompletion;
  const lines = printed.trim().split("\n");
  t.deepEqual(lines.map((l) => Number(l.split(" ")[0])), log.map((e) => Number(e.seq)), "the tail printed each event once, in order");
  t.regex(printed, /message\.completed .*You said: hello from the readme/);

  agent.kill("SIGTERM");
  await exited(agent);
  t.is(agent.exitCode, 0);
});

test("the README shows the example files as they are", async (t) => {
  const readme = await readFile(new URL("README.md", `file://${root}`), "utf8");
  for (const name of ["tail", "agent"]) {
    const file = await readFile(new URL(`clients/typescript/examples/${name}.ts`, `file://${root}`), "utf8");
    const link = readme.indexOf(`(clients/typescript/examples/${name}.ts)`);
    t.true(link > 0, `the README links examples/${name}.ts`);
    const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(link))?.[1];
    t.is(block, file, `the README's ${name} example is the file`);
  }
});
