// An agent that streams its reply word by word; it stops on cancellation and drains on SIGTERM.
import { abortOnSignals, createNodeClient } from "@eventide/client/node";
import { setTimeout as delay } from "node:timers/promises";

const [baseUrl = "http://127.0.0.1:8080", agentId = "echo-agent"] = process.argv.slice(2);
const client = createNodeClient({ baseUrl, apiKey: process.env.EVENTIDE_API_KEY });

await client.runAgent({
  agentId,
  maxInFlight: 4,
  signal: abortOnSignals(), // SIGTERM or SIGINT: finish running turns, then exit
  handler: async ({ input, signal, writer }) => {
    const words = `You said: ${String(input.text ?? "")}`.match(/\S+\s*/g) ?? [];
    for (const word of words) {
      writer.delta(word); // coalesced with the words of the next few ms into one append
      await delay(30, undefined, { signal }); // throws if the turn is cancelled
    }
    await writer.complete({ words: words.length }); // message.completed, then CompleteTurn
  },
});
