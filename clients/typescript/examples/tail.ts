// Prints a thread's events as they are appended, forever: across disconnects and restarts, each seq once.
import { createNodeClient } from "@eventide/client/node";

const [baseUrl = "http://127.0.0.1:8080", threadId] = process.argv.slice(2);
const client = createNodeClient({ baseUrl, apiKey: process.env.EVENTIDE_API_KEY });

for await (const event of client.tail(threadId, { afterSeq: 0, onReconnect: (r) => console.error(`reconnecting: ${r.reason}`) })) {
  console.log(`${event.seq} ${event.type} ${JSON.stringify(event.payload)}`);
}
