// The persister's view of Redis: a consumer group per partition log, and the
// thread streams the log entries point into.
import { readFileSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import type { StoredEvent } from "../../../domain/records.js";
import type { FeedBatch, PersistFeed } from "../hot-log.js";
import { decodeEntry } from "./event-codec.js";
import type { BlockingRedis, HotRedis, PartitionGroup, RedisCommands } from "./hot-redis.js";
import type { HotKeys } from "./keys.js";
import { ScriptRunner } from "./script-runner.js";

const group = "persister";
const logTrimEveryMs = 5_000;
const logHistoryMs = 60_000;
const script = (name: string) => readFileSync(new URL(`./scripts/${name}`, import.meta.url), "utf8");

type LogEntry = { id: string; message: Record<string, string> };
type ReadReply = { name: string; messages: LogEntry[] }[] | null;
/** A blocking read of one partition group, on that group's connection; it may outlive the read that started it. */
type BlockedRead = { partitions: string; done: boolean; result: Promise<{ reply: ReadReply } | { error: unknown }> };

export class RedisPersistFeed implements PersistFeed {
  readonly partitions: number;
  private readonly trim: ScriptRunner;
  private readonly groupsReady = new Set<number>();
  private readonly lastTrim = new Map<number, number>();
  /** Per partition, the last entry handed out in a batch: pending entries past it are not in any batch yet. */
  private readonly handedOut = new Map<number, string>();
  /** The batch handed out last, until it is acknowledged. */
  private unacked?: FeedBatch;
  /** The next batch, read while the last one is committed (for the same consumer, budget and partitions). */
  private ahead?: { key: string; batch: Promise<FeedBatch | undefined> };
  /**
   * Reads run one after the other, and so do the rewinds adoptions call for. A read that is no longer
   * wanted (read ahead for partitions that changed since) still delivers
   * entries to this consumer: they must be pending before the next read
   * looks for pending entries, or a later entry would be handed out first
   * and the read position would move past them (entries lost until the
   * stream was trimmed under them).
   */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly client: RedisCommands;
  /** Per partition group, a connection of the feed's own: a blocking read holds it. */
  private readonly blocking = new Map<string, Promise<BlockingRedis>>();
  /**
   * Per partition group, the blocking read under way. On a Cluster a lane waits on
   * one read per partition and goes on when the first answers; the others keep
   * waiting (their connections are busy until they answer) and what they deliver
   * is taken by a later read.
   */
  private readonly blocked = new Map<string, BlockedRead>();
  private closed = false;

  /**
   * `lingerMs`: after a quiet spell, how long the first entries wait for more
   * before they make a batch.
   */
  constructor(
    private readonly redis: HotRedis,
    private readonly keys: HotKeys,
    private readonly lingerMs = 0,
  ) {
    this.client = redis.commands;
    this.partitions = keys.partitions;
    this.trim = new ScriptRunner(this.client, script("trim_window.lua"));
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  async adopt(p: number, consumer: string, minIdleMs = 0): Promise<void> {
    // Claimed entries may lie before what was handed out: read from the first pending
    // one again, once the read under way (which may hand out some of them) is done.
    if ((await this.claim(p, consumer, minIdleMs)) > 0 || minIdleMs === 0) await this.inTurn(async () => this.rewind());
  }

  /** Makes entries pending with any consumer (this one included) and idle for minIdleMs this consumer's; how many. */
  private async claim(p: number, consumer: string, minIdleMs: number): Promise<number> {
    const log = this.keys.partitionLog(p);
    if (!this.groupsReady.has(p)) {
      try {
        await this.client.xGroupCreate(log, group, "0", { MKSTREAM: true });
      } catch (err) {
        if (!String(err).includes("BUSYGROUP")) throw err;
      }
      this.groupsReady.add(p);
    }
    let cursor = "0-0";
    let claimed = 0;
    do {
      const res = await this.client.xAutoClaimJustId(log, group, consumer, minIdleMs, cursor, { COUNT: 1000 });
      claimed += res.messages.length;
      cursor = res.nextId;
    } while (cursor !== "0-0");
    return claimed;
  }

  async nextBatch(partitions: number[], consumer: string, maxEvents: number, waitMs: number, signal: AbortSignal): Promise<FeedBatch> {
    // The batch handed out last was never acknowledged: its commit failed. Forget
    // what was read ahead and start again from the first pending entry, in order.
    if (this.unacked) this.rewind();
    if (partitions.length === 0) return emptyBatch();
    const key = `${consumer} ${maxEvents} ${partitions.join(",")}`;
    // A read ahead for other partitions is not used; the next read waits for it and finds its entries pending.
    const ahead = this.ahead?.key === key ? this.ahead.batch : undefined;
    this.ahead = undefined;
    // Shutting down: only what was read ahead (it is pending for this consumer), nothing new.
    if (signal.aborted && !ahead) return emptyBatch();
    const batch =
      (ahead && (await ahead)) ?? (signal.aborted ? emptyBatch() : await this.inTurn(() => this.read(partitions, consumer, maxEvents, waitMs)));
    if (batch.entries.size === 0) return batch;
    for (const [p, ids] of batch.entries) this.handedOut.set(p, ids[ids.length - 1]);
    this.unacked = batch;
    // Read the next batch while this one is committed: Redis round trips and
    // decoding overlap the Postgres transaction. Only entries past those handed
    // out are read, so nothing is in two batches; a failed read is simply redone.
    if (!signal.aborted) {
      const next = this.inTurn(() => this.read(partitions, consumer, maxEvents, waitMs)).catch(() => undefined);
      this.ahead = { key, batch: next };
    }
    return batch;
  }

  /** Reads from the first pending entry again (after a failed commit, or a partition changing hands). */
  private rewind(): void {
    this.unacked = undefined;
    this.ahead = undefined;
    this.handedOut.clear();
    // What finished blocking reads delivered is pending: reading from the first pending entry finds it.
    for (const [id, read] of this.blocked) if (read.done) this.blocked.delete(id);
  }

  /** Closes the blocking connections; reads blocked on them end. */
  close(): void {
    this.closed = true;
    for (const connection of this.blocking.values()) connection.then((c) => c.close(), () => {});
    this.blocking.clear();
  }

  /**
   * Our own pending entries not handed out yet first (adopted, read ahead, or
   * read before a failed commit), then new ones.
   */
  private async read(partitions: number[], consumer: string, maxEvents: number, waitMs: number): Promise<FeedBatch> {
    // An entry holds at least one event, so maxEvents entries is always enough to read.
    const maxEntries = maxEvents;
    const groups = this.redis.partitionGroups(partitions);
    let reply: ReadReply;
    for (;;) {
      try {
        reply = await this.readGroups(groups, consumer, (p) => this.handedOut.get(p) ?? "0", maxEntries);
      } catch (err) {
        if (!String(err).includes("NOGROUP")) throw err;
        // Redis lost the partition logs (flushed, or failed over empty): recreate the groups and go on.
        for (const p of partitions) {
          this.groupsReady.delete(p);
          await this.claim(p, consumer, 0);
        }
        this.rewind();
        return emptyBatch();
      }
      if (reply?.some((s) => s.messages.length > 0)) break;
      const waited = await this.waitForNew(groups, consumer, maxEntries, waitMs);
      // A blocking read for another set of partitions was under way: what it delivered is pending now.
      if (waited === "stale") continue;
      reply = waited;
      // Woken by the first appends after a quiet spell: a trickle of appends would make one
      // transaction each; lingering a moment lets their neighbours join the batch.
      const got = entriesIn(reply);
      if (got > 0 && got < maxEntries && this.lingerMs > 0) {
        await delay(this.lingerMs);
        reply = mergeReplies(reply!, await this.readGroups(groups, consumer, () => ">", maxEntries - got));
      }
      break;
    }
    const entries = new Map<number, string[]>();
    const entryThreads = new Map<number, string[]>();
    const namedThrough = new Map<string, number>();
    const ranges: { threadId: string; from: number; to: number }[] = [];
    let events = 0;
    // Entries past the event budget stay pending for this consumer and lead the next batch.
    for (const stream of reply ?? []) {
      const p = this.partitionOf(stream.name);
      for (const { id, message } of stream.messages) {
        const size = Number(message.l) - Number(message.f) + 1;
        if (events > 0 && events + size > maxEvents) break;
        events += size;
        if (!entries.has(p)) {
          entries.set(p, []);
          entryThreads.set(p, []);
        }
        entries.get(p)!.push(id);
        entryThreads.get(p)!.push(message.t);
        const range = { threadId: message.t, from: Number(message.f), to: Number(message.l) };
        ranges.push(range);
        namedThrough.set(range.threadId, Math.max(namedThrough.get(range.threadId) ?? 0, range.to));
      }
    }
    // An entry whose events the stream no longer holds (trimmed) yields fewer: namedThrough still names them.
    const found = await Promise.all(ranges.map((r) => this.readRange(r.threadId, r.from, r.to)));
    return { entries, entryThreads, events: found.flat(), namedThrough };
  }

  async ack(batch: FeedBatch, held: ReadonlySet<string> = new Set()): Promise<void> {
    const done = [...batch.entries]
      .map(([p, ids]) => [p, ids.filter((_, i) => !held.has(batch.entryThreads.get(p)![i]))] as const)
      .filter(([, ids]) => ids.length > 0);
    await Promise.all(done.map(([p, ids]) => this.client.xAck(this.keys.partitionLog(p), group, ids)));
    if (this.unacked === batch) this.unacked = undefined;
    await Promise.all([...batch.entries.keys()].map((p) => this.trimLog(p)));
  }

  /**
   * The log keeps what is pending or unread, plus a minute of history so that
   * servers' live readers, which follow the same log, never lose an entry to
   * trimming. At most every few seconds per partition.
   */
  private async trimLog(p: number): Promise<void> {
    const now = Date.now();
    if ((this.lastTrim.get(p) ?? 0) > now - logTrimEveryMs) return;
    this.lastTrim.set(p, now);
    const log = this.keys.partitionLog(p);
    const pending = await this.client.xPending(log, group);
    const groups = await this.client.xInfoGroups(log);
    const delivered = String(groups.find((g) => g.name === group)?.["last-delivered-id"] ?? "0-0");
    const floor = pending.pending > 0 && pending.firstId ? pending.firstId : delivered;
    const minId = minStreamId(floor, `${now - logHistoryMs}-0`);
    await this.client.xTrim(log, "MINID", minId);
  }

  async markPersisted(threadId: string, seq: number, window: number): Promise<void> {
    const k = this.keys;
    await this.trim.run(
      [k.meta(threadId), k.stream(threadId), k.eventIndex(k.partition(threadId))],
      [String(seq), String(window)],
    );
  }

  /** A non-blocking XREADGROUP per group, at once; their replies in one. */
  private async readGroups(groups: PartitionGroup[], consumer: string, id: (p: number) => string, count: number): Promise<ReadReply> {
    const replies = await Promise.all(groups.map((g) => this.readGroup(this.client, g.partitions, consumer, id, count)));
    return replies.flatMap((r) => r ?? []);
  }

  /**
   * Blocks until new entries arrive in any group (or waitMs pass): a blocking read per
   * group, each on its group's connection, kept from earlier calls while still under way.
   * Returns what every finished read delivered, less what was handed out since, or
   * "stale" after waiting out a read that was for other partitions.
   */
  private async waitForNew(groups: PartitionGroup[], consumer: string, count: number, waitMs: number): Promise<ReadReply | "stale"> {
    let stale = false;
    const reads: BlockedRead[] = [];
    for (const group of groups) {
      const partitions = `${consumer} ${group.partitions.join(",")}`;
      let read = this.blocked.get(group.id);
      if (read && read.partitions !== partitions) {
        await read.result;
        this.blocked.delete(group.id);
        stale = true;
        continue;
      }
      if (!read) {
        read = this.startBlockedRead(group, partitions, consumer, count, waitMs);
        this.blocked.set(group.id, read);
      }
      reads.push(read);
    }
    if (stale) return "stale";
    await Promise.race(reads.map((r) => r.result));
    const merged: NonNullable<ReadReply> = [];
    for (const [id, read] of this.blocked) {
      if (!read.done || !reads.includes(read)) continue;
      this.blocked.delete(id);
      const outcome = await read.result;
      if ("error" in outcome) throw outcome.error;
      for (const stream of outcome.reply ?? []) {
        // Entries a read of pending ones took first (this read delivered them before that one ran).
        const after = this.handedOut.get(this.partitionOf(stream.name));
        const messages = after ? stream.messages.filter((m) => compareStreamIds(m.id, after) > 0) : stream.messages;
        if (messages.length > 0) merged.push({ name: stream.name, messages });
      }
    }
    return merged;
  }

  private startBlockedRead(group: PartitionGroup, partitions: string, consumer: string, count: number, waitMs: number): BlockedRead {
    const read: BlockedRead = {
      partitions,
      done: false,
      result: this.connectionFor(group)
        .then((conn) => this.readGroup(conn.commands, group.partitions, consumer, () => ">", count, waitMs))
        .then(
          (reply) => ({ reply }),
          (error: unknown) => ({ error }),
        )
        .finally(() => {
          read.done = true;
        }),
    };
    return read;
  }

  private connectionFor(group: PartitionGroup): Promise<BlockingRedis> {
    if (this.closed) return Promise.reject(new Error("the persist feed is closed"));
    let connection = this.blocking.get(group.id);
    if (!connection) {
      connection = this.redis.blockingConnection();
      // A connection that failed to open is opened again next time.
      connection.catch(() => this.blocking.delete(group.id));
      this.blocking.set(group.id, connection);
    }
    return connection;
  }

  private readGroup(conn: RedisCommands, partitions: number[], consumer: string, id: (p: number) => string, count: number, blockMs?: number) {
    return conn.xReadGroup(
      group,
      consumer,
      partitions.map((p) => ({ key: this.keys.partitionLog(p), id: id(p) })),
      blockMs === undefined ? { COUNT: count } : { COUNT: count, BLOCK: blockMs },
    ) as Promise<ReadReply>;
  }

  private partitionOf(logKey: string): number {
    return Number(logKey.slice(logKey.indexOf("{") + 1, logKey.indexOf("}")));
  }

  async readRange(threadId: string, from: number, to: number): Promise<StoredEvent[]> {
    const entries = (await this.client.xRange(this.keys.stream(threadId), `${from}-0`, `${to}-0`)) ?? [];
    return entries.map((e) => decodeEntry(threadId, e.id, e.message as Record<string, string>));
  }
}

function emptyBatch(): FeedBatch {
  return { entries: new Map(), entryThreads: new Map(), events: [], namedThrough: new Map() };
}

function entriesIn(reply: ReadReply): number {
  return reply?.reduce((n, s) => n + s.messages.length, 0) ?? 0;
}

/** The second read's entries after the first's, stream by stream (so each partition's entries stay in log order). */
function mergeReplies(first: NonNullable<ReadReply>, second: ReadReply): NonNullable<ReadReply> {
  const byStream = new Map(first.map((s) => [s.name, [...s.messages]]));
  for (const s of second ?? []) byStream.set(s.name, [...(byStream.get(s.name) ?? []), ...s.messages]);
  return [...byStream].map(([name, messages]) => ({ name, messages }));
}

function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am - bm || as - bs;
}

function minStreamId(a: string, b: string): string {
  return compareStreamIds(a, b) <= 0 ? a : b;
}
