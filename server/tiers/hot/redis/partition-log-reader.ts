// One blocking reader per process follows every partition log (one per
// partition on a Cluster, where one XREAD names one slot) and feeds the
// in-process fan-out, so N tailers never mean N Redis connections. Only
// threads with local subscribers are read back from their streams, and only
// the seqs this process's own appends have not delivered already.
import type { StoredEvent } from "../../../domain/records.js";
import type { OrderedFanout } from "../../../live/ordered-fanout.js";
import type { BlockingRedis, HotRedis } from "./hot-redis.js";
import type { HotKeys } from "./keys.js";

type RangeReader = (threadId: string, from: number, to: number) => Promise<StoredEvent[]>;

const blockMs = 1_000;
const batchEntries = 1_000;

export class PartitionLogReader {
  private readonly stopping = new AbortController();
  private readonly connections: BlockingRedis[] = [];
  private readonly loops: Promise<void>[] = [];
  private readonly cursors = new Map<string, string>();

  constructor(
    private readonly redis: HotRedis,
    private readonly keys: HotKeys,
    private readonly fanout: OrderedFanout,
    private readonly range: RangeReader,
    private readonly log?: { warn(obj: object, msg: string): void },
  ) {}

  async start(): Promise<void> {
    // Start from each log's current end, read before serving, so no append
    // after start-up can slip between "now" and the first blocking read.
    const all = Array.from({ length: this.keys.partitions }, (_, p) => p);
    await Promise.all(
      all.map(async (p) => {
        const key = this.keys.partitionLog(p);
        const [newest] = (await this.redis.commands.xRevRange(key, "+", "-", { COUNT: 1 })) ?? [];
        this.cursors.set(key, newest?.id ?? "0-0");
      }),
    );
    // A blocking XREAD holds its connection, so each gets one of its own.
    for (const group of this.redis.partitionGroups(all)) {
      const connection = await this.redis.blockingConnection();
      this.connections.push(connection);
      this.loops.push(this.follow(connection, group.partitions.map((p) => this.keys.partitionLog(p))));
    }
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const connection of this.connections) connection.close();
    await Promise.all(this.loops);
  }

  private async follow(connection: BlockingRedis, logs: string[]): Promise<void> {
    while (!this.stopping.signal.aborted) {
      try {
        const streams = logs.map((key) => ({ key, id: this.cursors.get(key)! }));
        const reply = (await connection.commands.xRead(streams, { BLOCK: blockMs, COUNT: batchEntries })) as
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
        const delivered = this.fanout.deliveredTo(message.t) ?? 0;
        const to = Number(message.l);
        if (to <= delivered) continue;
        const from = Math.max(Number(message.f), delivered + 1);
        const known = ranges.get(message.t);
        if (known) known.to = Math.max(known.to, to);
        else ranges.set(message.t, { from, to });
      }
    }
    await Promise.all(
      [...ranges].map(async ([threadId, { from, to }]) => {
        // This process's own appends deliver their events as they return: wait for those in flight,
        // then read back only what is still missing (another server's appends, or a failed delivery).
        const inFlight = this.fanout.appendsInFlight(threadId);
        if (inFlight) {
          await inFlight;
          if (!this.fanout.hasSubscribers(threadId)) return;
          const delivered = this.fanout.deliveredTo(threadId) ?? 0;
          if (to <= delivered) return;
          from = Math.max(from, delivered + 1);
        }
        try {
          this.fanout.publishRead(threadId, await this.range(threadId, from, to));
        } catch (err) {
          // The cursor has moved on: tell the thread's tails to read what they missed from storage.
          this.log?.warn({ err: String(err), threadId }, "live range read failed; tails will catch up from storage");
          this.fanout.resync(threadId);
        }
      }),
    );
  }
}
