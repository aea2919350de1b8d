// The production hot tier: Redis Streams, one Lua script per atomic change.
import { readFileSync } from "node:fs";
import { newId } from "../../../domain/ids.js";
import {
  EventIdConflict,
  LeaseLost,
  NotFound,
  ReplicasUnconfirmed,
  StaleExpectedSeq,
  ThreadBusy,
  TurnCancelled,
  TurnNotStarted,
} from "../../../domain/errors.js";
import type { StoredEvent, ThreadRecord, TurnRecord } from "../../../domain/records.js";
import { OrderedFanout } from "../../../live/ordered-fanout.js";
import { type AppendCommand, type AppendResult, eventIdKey, type HotLog, idempotencyScope } from "../hot-log.js";
import { decodeEntry, encodeBody } from "./event-codec.js";
import type { HotRedis, RedisCommands } from "./hot-redis.js";
import { HotKeys } from "./keys.js";
import { PartitionLogReader } from "./partition-log-reader.js";
import { ScriptRunner } from "./script-runner.js";

export interface RedisHotLogOptions {
  redis: HotRedis;
  prefix: string;
  partitions: number;
  idempotencyTtlSeconds: number;
  /** Follow the partition logs for live fan-out (servers do; pure writers need not). */
  followLive: boolean;
  log?: { warn(obj: object, msg: string): void };
  /** Replicas that must confirm a write (WAIT) before it is acknowledged; 0 = none. */
  waitReplicas?: number;
  waitTimeoutMs?: number;
}

const script = (name: string) => readFileSync(new URL(`./scripts/${name}`, import.meta.url), "utf8");

export class RedisHotLog implements HotLog {
  readonly keys: HotKeys;
  readonly live = new OrderedFanout();
  /** Told of each thread this process's submits made ready, as the append returns (before its notice comes back over pub/sub). */
  readonly readyListeners = new Set<(threadId: string) => void>();
  private readonly client: RedisCommands;
  private readonly appendScript: ScriptRunner;
  private readonly restoreScript: ScriptRunner;
  private readonly deleteScript: ScriptRunner;
  private reader?: PartitionLogReader;

  private constructor(private readonly opts: RedisHotLogOptions) {
    this.client = opts.redis.commands;
    this.keys = new HotKeys(opts.prefix, opts.partitions);
    this.appendScript = new ScriptRunner(this.client, script("append_events.lua"));
    this.restoreScript = new ScriptRunner(this.client, script("restore_thread.lua"));
    this.deleteScript = new ScriptRunner(this.client, script("delete_thread.lua"));
  }

  static async open(opts: RedisHotLogOptions): Promise<RedisHotLog> {
    const hot = new RedisHotLog(opts);
    if (opts.followLive) {
      hot.reader = new PartitionLogReader(opts.redis, hot.keys, hot.live, (threadId, from, to) =>
        hot.range(threadId, from, to),
        opts.log,
      );
      await hot.reader.start();
    }
    return hot;
  }

  newThreadId(scope?: string): string {
    if (!scope) return newId();
    const wanted = this.keys.partition(scope);
    for (;;) {
      const id = newId();
      if (this.keys.partition(id) === wanted) return id;
    }
  }

  append(cmd: AppendCommand): Promise<AppendResult> {
    const done = this.appendNow(cmd);
    // The reader leaves this append's events to it (see OrderedFanout.appending). Not with WAIT:
    // the reader would wait as long as the replicas take, for every thread it reads.
    if (this.reader && !this.opts.waitReplicas) this.live.appending(cmd.threadId, done);
    return done;
  }

  private async appendNow(cmd: AppendCommand): Promise<AppendResult> {
    const k = this.keys;
    const p = k.partition(cmd.threadId);
    if (!cmd.eventIdsChecked) await this.checkEventIds(cmd);
    const turn = cmd.submit?.turn;
    const scope = idempotencyScope(cmd);
    // Without an idempotency key the script gets the meta key again (a key must be named, not null).
    const idemKey = scope ? k.idempotency(cmd.threadId, scope) : k.meta(cmd.threadId);
    const args: string[] = [
      cmd.threadId,
      cmd.tenantId,
      cmd.expectedLastSeq === undefined ? "" : String(cmd.expectedLastSeq),
      cmd.create ? JSON.stringify(cmd.create.metadata) : "",
      turn ? turn.turnId : "",
      turn ? JSON.stringify(turnBody(turn)) : "",
      String(this.opts.idempotencyTtlSeconds),
      String(cmd.events.length),
      cmd.turnId ?? "",
      cmd.leaseId ?? "",
      cmd.submit?.rejectIfBusy ? "1" : "0",
      k.dispatchChannel(p),
    ];
    for (const e of cmd.events) args.push(e.eventId, e.clientSuppliedId ? "1" : "0", encodeBody(e, cmd.tenantId));
    const keys = [
      k.meta(cmd.threadId),
      k.stream(cmd.threadId),
      k.partitionLog(p),
      k.eventIndex(p),
      k.turns(cmd.threadId),
      k.turnIndex(p),
      idemKey,
      k.turnState(cmd.threadId),
      k.turnQueue(cmd.threadId),
      k.readyThreads(p),
    ];
    const reply = (await this.appendScript.run(keys, args)) as string[];
    switch (reply[0]) {
      case "OK": {
        await this.confirmReplicated(cmd.threadId);
        const [first, last, createdAt] = [Number(reply[1]), Number(reply[2]), Number(reply[3])];
        const events: StoredEvent[] = cmd.events.map((e, i) => ({
          eventId: e.eventId,
          threadId: cmd.threadId,
          turnId: e.turnId,
          seq: first + i,
          type: e.type,
          payload: e.payload,
          metadata: e.metadata,
          schemaVersion: e.schemaVersion,
          createdAt,
          tenantId: cmd.tenantId,
          level: e.level,
        }));
        const thread: ThreadRecord = {
          threadId: cmd.threadId,
          tenantId: cmd.tenantId,
          status: reply[4] as ThreadRecord["status"],
          lastSeq: last,
          metadata: JSON.parse(reply[5]),
          createdAt: Number(reply[6]),
          updatedAt: createdAt,
        };
        const result: AppendResult = { kind: "appended", thread, events };
        if (turn) result.turn = { ...turn, submittedSeq: last, createdAt, updatedAt: createdAt };
        // This process's tails get the events now, not after the partition log reader reads them back.
        this.live.publishAppended(cmd.threadId, events);
        if (reply[7] === "1") for (const listener of this.readyListeners) listener(cmd.threadId);
        return result;
      }
      case "NOT_FOUND":
        throw new NotFound("thread", cmd.threadId);
      case "NO_TURN":
        throw new NotFound("turn", cmd.turnId ?? "");
      case "EXISTS":
        throw new EventIdConflict(cmd.threadId, "thread id already in use");
      case "BUSY":
        throw new ThreadBusy(`thread ${cmd.threadId} has a queued or running turn; nothing was written`);
      case "LEASE_LOST":
        throw new LeaseLost(
          cmd.leaseId ? `lease ${cmd.leaseId} does not hold turn ${cmd.turnId}; nothing was written` : `turn ${cmd.turnId} is running: lease_id is required`,
        );
      case "CANCELLED":
        throw new TurnCancelled(`turn ${cmd.turnId} was cancelled; nothing was written`);
      case "QUEUED":
        throw new TurnNotStarted(cmd.turnId ?? "");
      case "STALE":
        throw new StaleExpectedSeq(cmd.expectedLastSeq ?? 0, Number(reply[1]));
      case "CONFLICT":
        throw new EventIdConflict(reply[1], reply[2] === "partial" ? "some ids of this batch are new" : `thread/seq ${reply[2]}`);
      case "DUP_EVENTS": {
        // The first try may have failed in its WAIT: a retry is acknowledged on the same terms.
        await this.confirmReplicated(cmd.threadId);
        const seqs = reply.slice(1).map(Number);
        const events = await Promise.all(seqs.map((s) => this.range(cmd.threadId, s, s).then((r) => r[0])));
        return { kind: "duplicate-events", thread: await this.mustGetThread(cmd.threadId), events };
      }
      case "DUP_TURN": {
        const [threadId, turnId] = reply[1].split(" ");
        await this.confirmReplicated(threadId);
        const original = await this.getTurn(turnId);
        if (!original) throw new NotFound("turn", turnId);
        return { kind: "duplicate-turn", thread: await this.mustGetThread(threadId), turn: original };
      }
      default:
        throw new Error(`append_events.lua answered ${JSON.stringify(reply)}`);
    }
  }

  async restoreThread(thread: ThreadRecord, turns: TurnRecord[]): Promise<void> {
    const k = this.keys;
    const open = turns.filter((t) => t.status === "queued" || t.status === "running").length;
    const args = [
      thread.threadId,
      thread.tenantId,
      String(thread.lastSeq),
      JSON.stringify(thread.metadata),
      String(thread.createdAt),
      String(thread.updatedAt),
      thread.status,
      String(open),
    ];
    const inOrder = [...turns].sort((a, b) => a.submittedSeq - b.submittedSeq);
    for (const turn of inOrder) args.push(turn.turnId, JSON.stringify(turn), turn.status, String(turn.attempt), turn.agentId);
    const p = k.partition(thread.threadId);
    await this.restoreScript.run(
      [k.meta(thread.threadId), k.turns(thread.threadId), k.turnIndex(p), k.turnState(thread.threadId), k.turnQueue(thread.threadId), k.readyThreads(p), k.leases(p)],
      args,
    );
  }

  async deleteThread(threadId: string): Promise<void> {
    const k = this.keys;
    const p = k.partition(threadId);
    await this.deleteScript.run(
      [k.meta(threadId), k.stream(threadId), k.turns(threadId), k.eventIndex(p), k.turnIndex(p), k.turnState(threadId), k.turnQueue(threadId), k.readyThreads(p), k.leases(p)],
      [threadId],
    );
  }

  async getThread(threadId: string): Promise<ThreadRecord | undefined> {
    return threadOfMeta(threadId, await this.client.hGetAll(this.keys.meta(threadId)));
  }

  async getTurn(turnId: string, tenantId?: string): Promise<TurnRecord | undefined> {
    const where = await this.probePartitions((p) => this.client.hGet(this.keys.turnIndex(p), turnId));
    if (!where) return undefined;
    const [threadId, owner] = where.split(" ");
    // Another tenant's turn ends here, as an unknown one does; an entry without its tenant is checked on the record.
    if (tenantId !== undefined && owner !== undefined && owner !== tenantId) return undefined;
    const turn = await this.turnOfThread(threadId, turnId);
    return turn && (tenantId === undefined || turn.tenantId === tenantId) ? turn : undefined;
  }

  /** A turn whose thread is known: no probe of the partitions' turn indexes. */
  async turnOfThread(threadId: string, turnId: string): Promise<TurnRecord | undefined> {
    const [json, state] = await Promise.all([
      this.client.hGet(this.keys.turns(threadId), turnId),
      this.client.hmGet(this.keys.turnState(threadId), turnStateFields.map((f) => `${turnId}:${f}`)),
    ]);
    return json ? withTurnState(JSON.parse(json) as TurnRecord, state) : undefined;
  }

  /** Every turn the hot tier holds for the thread, with its dispatch state. */
  async threadTurns(threadId: string): Promise<TurnRecord[]> {
    const [all, state] = await Promise.all([this.client.hGetAll(this.keys.turns(threadId)), this.client.hGetAll(this.keys.turnState(threadId))]);
    return Object.entries(all).map(([turnId, json]) =>
      withTurnState(JSON.parse(json) as TurnRecord, turnStateFields.map((f) => state[`${turnId}:${f}`] ?? null)),
    );
  }

  read(threadId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    return this.range(threadId, afterSeq + 1, undefined, limit);
  }

  async findEvent(tenantId: string, eventId: string): Promise<StoredEvent | undefined> {
    const field = eventIdKey(tenantId, eventId);
    const where = await this.probePartitions((p) => this.client.hGet(this.keys.eventIndex(p), field));
    if (!where) return undefined;
    const [threadId, seq] = where.split(" ");
    const [event] = await this.range(threadId, Number(seq), Number(seq));
    return event;
  }

  async ping(): Promise<void> {
    await this.opts.redis.ping();
  }

  /**
   * With waitReplicas, a write to the thread's partition is acknowledged only once that many
   * replicas have it (WAIT on the connection it went out on), so a master lost right after
   * does not take it along. Short of that the write stands on the master, but the caller is told.
   */
  async confirmReplicated(threadId: string): Promise<void> {
    const wanted = this.opts.waitReplicas ?? 0;
    if (wanted === 0) return;
    const timeoutMs = this.opts.waitTimeoutMs ?? 1_000;
    const confirmed = await this.opts.redis.waitReplicas(this.keys.meta(threadId), wanted, timeoutMs);
    if (confirmed < wanted) {
      throw new ReplicasUnconfirmed(
        `written, but ${confirmed} of ${wanted} Redis replicas confirmed it within ${timeoutMs} ms; retry with the same event_ids or idempotency_key`,
      );
    }
  }

  async close(): Promise<void> {
    await this.reader?.stop();
  }

  private async range(threadId: string, from: number, to?: number, count?: number): Promise<StoredEvent[]> {
    const entries = await this.client.xRange(
      this.keys.stream(threadId),
      `${from}-0`,
      to === undefined ? "+" : `${to}-0`,
      count === undefined ? undefined : { COUNT: count },
    );
    return (entries ?? []).map((entry) => decodeEntry(threadId, entry.id, entry.message as Record<string, string>));
  }

  private async mustGetThread(threadId: string): Promise<ThreadRecord> {
    const thread = await this.getThread(threadId);
    if (!thread) throw new NotFound("thread", threadId);
    return thread;
  }

  /**
   * The script sees only its own partition's event index; client ids used in
   * another partition are caught here (one pipelined round trip, only when the
   * client chose ids). Only the tenant's own ids are looked at, so what is
   * named in the conflict is the caller's. Two threads of a tenant racing to
   * use one new id is left to the warm tier's unique (tenant_id, event_id).
   */
  async checkEventIds(cmd: AppendCommand): Promise<void> {
    const ids = cmd.events.filter((e) => e.clientSuppliedId).map((e) => e.eventId);
    if (ids.length === 0 || this.keys.partitions === 1) return;
    const own = this.keys.partition(cmd.threadId);
    const fields = ids.map((id) => eventIdKey(cmd.tenantId, id));
    const others = Array.from({ length: this.keys.partitions }, (_, p) => p).filter((p) => p !== own);
    const answers = await Promise.all(others.map((p) => this.client.hmGet(this.keys.eventIndex(p), fields)));
    for (const answer of answers) {
      const i = answer.findIndex((where) => where !== null);
      if (i >= 0) throw new EventIdConflict(ids[i], `thread/seq ${answer[i]}`);
    }
  }

  /** By-id lookups ask every partition's index at once (one pipelined round trip). */
  private async probePartitions(lookup: (p: number) => Promise<string | null | undefined>): Promise<string | undefined> {
    const answers = await Promise.all(Array.from({ length: this.keys.partitions }, (_, p) => lookup(p)));
    return answers.find((a): a is string => typeof a === "string") ?? undefined;
  }
}

/** A thread's meta hash as a record: a tombstone for a deleted thread, undefined for none. */
export function threadOfMeta(threadId: string, h: Record<string, string>): ThreadRecord | undefined {
  if (h.status === "deleted") return { threadId, tenantId: h.tenant ?? "", status: "deleted", lastSeq: 0, metadata: {}, createdAt: 0, updatedAt: 0 };
  if (!h.tenant) return undefined;
  return {
    threadId,
    tenantId: h.tenant,
    status: h.status as ThreadRecord["status"],
    lastSeq: Number(h.last_seq ?? 0),
    metadata: h.metadata ? JSON.parse(h.metadata) : {},
    createdAt: Number(h.created_at),
    updatedAt: Number(h.updated_at ?? h.created_at),
  };
}

/** The turn state hash's fields of a turn ("<turn_id>:<field>"), in the order withTurnState takes their values (claim_turn.lua's too). */
const turnStateFields = ["status", "attempt", "agent", "error", "output", "started", "ended", "updated"] as const;

/** The submitted turn overlaid with what dispatch changed since (turn state hash fields, in turnStateFields order). */
export function withTurnState(turn: TurnRecord, state: (string | null)[]): TurnRecord {
  const [status, attempt, agent, error, output, started, ended, updated] = state;
  if (status) turn.status = status as TurnRecord["status"];
  if (attempt) turn.attempt = Number(attempt);
  if (agent) turn.agentId = agent;
  if (error) turn.error = error;
  if (output) turn.output = JSON.parse(output);
  if (started) turn.startedAt = Number(started);
  if (ended) turn.endedAt = Number(ended);
  if (updated) turn.updatedAt = Number(updated);
  return turn;
}

function turnBody(turn: Omit<TurnRecord, "submittedSeq">): object {
  // createdAt/updatedAt/submittedSeq are spliced in by the script from Redis time and the assigned seq.
  const { createdAt: _c, updatedAt: _u, ...rest } = turn;
  return rest;
}
