// The cold replay's floor: decoding the thread's archive objects alone, in
// this process, one after the other, with no RPC, no tier lookups and no
// encoding: the format's own cost (gunzip + JSON.parse of every line), and
// eventide's decoder of it (server/tiers/cold/archive-format.ts, which a
// replay runs). A replay from S3 on one core cannot pass these.
import { Readable } from "node:stream";
import { gunzipSync } from "node:zlib";
import { decodeArchivePages } from "../server/tiers/cold/archive-format.js";
import type { ColdStore } from "../server/tiers/cold/cold-store.js";
import type { WarmStore } from "../server/tiers/warm/warm-store.js";
import { nowMs } from "./clock.js";
import type { Measurement } from "./result.js";

export async function archiveDecodeFloor(scenario: string, warm: WarmStore, cold: ColdStore, threadId: string): Promise<Measurement[]> {
  const objects: Buffer[] = [];
  for (const archive of await warm.listArchives(threadId)) {
    const chunks: Buffer[] = [];
    for await (const chunk of await cold.get(archive.objectKey)) chunks.push(Buffer.from(chunk as Uint8Array));
    objects.push(Buffer.concat(chunks));
  }
  const timed = async (metric: string, decode: (object: Buffer) => Promise<number>): Promise<Measurement[]> => {
    const cpu = process.cpuUsage();
    const started = nowMs();
    let events = 0;
    for (const object of objects) events += await decode(object);
    const seconds = (nowMs() - started) / 1000;
    const spent = process.cpuUsage(cpu);
    return [
      { scenario, metric: `floor, ${metric}: events/s`, value: events / seconds, unit: "events/s" },
      { scenario, metric: `floor, ${metric}: CPU per event`, value: (spent.user + spent.system) / Math.max(1, events), unit: "µs" },
    ];
  };
  return [
    ...(await timed("gunzip + JSON.parse of the archive objects", async (object) => {
      let events = 0;
      for (const line of gunzipSync(object).toString("utf8").split("\n")) {
        if (!line) continue;
        JSON.parse(line);
        events++;
      }
      return events;
    })),
    ...(await timed("eventide's archive decoder on them", async (object) => {
      let events = 0;
      for await (const page of decodeArchivePages(Readable.from([object]))) events += page.length;
      return events;
    })),
  ];
}
