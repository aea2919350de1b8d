// One blocking reader per process follows every partition log and feeds the
// in-process fan-out, so N tailers never mean N Redis connections. Only
// threads with local subscribers are read back from their streams.
import type { RedisClientType } from "redis";
import type { StoredEvent } from "../../../domain/records.js";
import type { ThreadFanout } from "../../../live/fanout.js";
import type { HotKeys } from "./keys.js";

type RangeReader = (threadId: string, from: number, to: number) => Promise<StoredEvent[]>;

const blockMs = 1_000;
const batchEntries = 1_000;

export class PartitionLogReader {
  private readonly stopping = new AbortController();
  private connection?: RedisClientType;
  private loop?: Promise<void>;
  private readonly cursors = new Map<string, string>();

  constructor(
    private readonly client: RedisClientType,
    private readonly keys: HotKeys,
    private readonly fanout: ThreadFanout,
    private readonly range: RangeReader,
    private readonly log?: { warn(obj: object, msg: string): void },
  ) {}

  async start(): Promise<void> {
    // Start from each log's current end, read before serving, so no append
    // after start-up can slip between "now" and the first blocking read.
    for (let p = 0; p < this.keys.partitions; p++) {
      const key = this.keys.partitionLog(p);
      const [newest] = (await this.client.xRevRange(key, "+", "-", { COUNT: 1 })) ?? [];
      this.cursors.set(key, newest?.id ?? "0-0");
    }
    // A blocking XREAD holds its connection, so it gets one of its own.
    this.connection = this.client.duplicate() as RedisClientType;
    this.connection.on("error", (err) => this.log?.warn({ err }, "partition log reader connection error"));
    await this.connection.connect();
    this.loop = this.follow(this.connection);
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.connection?.destroy();
    await this.loop;
  }

  private async follow(connection: RedisClientType): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        const streams = [...this.cursors].map(([key, id]) => ({ key, id }));
        const reply = (await connection.xRead(streams, { BLOCK: blockMs, COUNT: batchEntries })) as
          | { name: string; messages: { id: string; message: Record<string, string> }[] }[]
          | null;
        if (!reply) continue;
        await this.dispatch(reply);
      } catch (err) {
        if (this.stopping.signal.aborted) return;
        this.log?.warn({ err }, "partition log read failed; retrying");
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async dispatch(reply: { name: string; messages: { id: string; message: Record<string, string> }[] }[]) {
    // Merge each thread's appends into one range read; threads are independent, so read them in parallel.
    const ranges = new Map<string, { from: number; to: number }>();
    for (const stream of reply) {
      for (const { id, message } of stream.messages) {
        this.cursors.set(stream.name, id);
        if (!this.fanout.hasSubscribers(message.t)) continue;
        const from = Number(message.f);
        const to = Number(message.l);
        const known = ranges.get(message.t);
        if (known) known.to = Math.max(known.to, to);
        else ranges.set(message.t, { from, to });
      }
    }
    await Promise.all(
      [...ranges].map(async ([threadId, { from, to }]) => {
        try {
          this.fanout.publish(threadId, await this.range(threadId, from, to));
        } catch (err) {
          // The cursor has moved on: tell the thread's tails to read what they missed from storage.
          this.log?.warn({ err: String(err), threadId }, "live range read failed; tails will catch up from storage");
          this.fanout.publish(threadId, "resync");
        }
      }),
    );
  }
}
