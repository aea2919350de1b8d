// Turn dispatch on Redis: per-thread state beside the thread's keys, one Lua
// script per change (single slot: the thread's partition), notices over
// sharded pub/sub (a channel per partition, in its slot) so agent feeds in
// every server process wake at once.
import { readFileSync } from "node:fs";
import type { JsonObject } from "@bufbuild/protobuf";
import { newId } from "../../../domain/ids.js";
import { LeaseLost, NotFound, TurnCancelled } from "../../../domain/errors.js";
import type { TurnRecord } from "../../../domain/records.js";
import {
  type ClaimResult,
  type DispatchNotice,
  type DispatchPolicy,
  leaseIdFor,
  threadOfLease,
  type TurnDispatch,
} from "../turn-dispatch.js";
import type { HotRedis, RedisCommands } from "./hot-redis.js";
import { type RedisHotLog, threadOfMeta, withTurnState } from "./redis-hot-log.js";
import { ScriptRunner } from "./script-runner.js";

const script = (name: string) => readFileSync(new URL(`./scripts/${name}`, import.meta.url), "utf8");
const withLib = (name: string) => `${script("dispatch_lib.lua")}\n${script(name)}`;

export class RedisTurnDispatch implements TurnDispatch {
  private readonly claimScript: ScriptRunner;
  private readonly renewScript: ScriptRunner;
  private readonly endScript: ScriptRunner;
  private readonly cancelScript: ScriptRunner;
  private readonly unstickScript: ScriptRunner;
  private readonly listeners = new Set<(notice: DispatchNotice) => void>();
  private unsubscribe?: () => Promise<void>;
  /**
   * The last ready notice told per thread, and whence: a submit here tells its listeners as it
   * returns, and its pub/sub echo (which may come first or second) is not told again.
   */
  private readonly toldReady = new Map<string, { at: number; here: boolean }>();

  private constructor(
    private readonly client: RedisCommands,
    private readonly hot: RedisHotLog,
    private readonly policy: DispatchPolicy,
  ) {
    this.claimScript = new ScriptRunner(client, withLib("claim_turn.lua"));
    this.renewScript = new ScriptRunner(client, withLib("renew_lease.lua"));
    this.endScript = new ScriptRunner(client, withLib("end_turn.lua"));
    this.cancelScript = new ScriptRunner(client, withLib("cancel_turn.lua"));
    this.unstickScript = new ScriptRunner(client, withLib("unstick_thread.lua"));
  }

  /**
   * With `listen`, connections of their own subscribe to the notices (servers that feed agents do).
   * A subscription reconnects by itself; a notice missed meanwhile is made up by the feeds' polling.
   */
  static async open(redis: HotRedis, hot: RedisHotLog, policy: DispatchPolicy, listen: boolean): Promise<RedisTurnDispatch> {
    const dispatch = new RedisTurnDispatch(redis.commands, hot, policy);
    if (listen) {
      const channels = Array.from({ length: hot.keys.partitions }, (_, p) => hot.keys.dispatchChannel(p));
      const unsubscribe = await redis.shardedSubscribe(channels, (message) => dispatch.onMessage(message));
      // A submit here tells this process's feeds as it returns: a pub/sub round trip sooner.
      const onReady = (threadId: string) => dispatch.readyHere(threadId);
      hot.readyListeners.add(onReady);
      dispatch.unsubscribe = async () => {
        hot.readyListeners.delete(onReady);
        await unsubscribe();
      };
    }
    return dispatch;
  }

  async readyThreads(limit: number): Promise<string[]> {
    const k = this.hot.keys;
    const now = Date.now();
    const perPartition = await Promise.all(
      Array.from({ length: k.partitions }, (_, p) =>
        this.client.zRangeByScoreWithScores(k.readyThreads(p), "-inf", now, { LIMIT: { offset: 0, count: limit } }),
      ),
    );
    return perPartition
      .flat()
      .sort((a, b) => a.score - b.score)
      .slice(0, limit)
      .map((entry) => entry.value);
  }

  async readyCount(): Promise<number> {
    const k = this.hot.keys;
    const now = Date.now();
    const counts = await Promise.all(Array.from({ length: k.partitions }, (_, p) => this.client.zCount(k.readyThreads(p), "-inf", now)));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  async claim(threadId: string, agentId: string, tenantId?: string): Promise<ClaimResult> {
    const leaseId = leaseIdFor(threadId, newId());
    const reply = (await this.run(this.claimScript, threadId, [agentId, leaseId, String(this.policy.leaseTtlMs), newId(), tenantId ?? ""])) as string[];
    if (reply[0] === "NONE") return { kind: "none" };
    if (reply[0] === "TENANT") return { kind: "other-tenant", tenantId: reply[1] };
    if (reply[0] === "STICKY") return { kind: "sticky" };
    // The script answers with the turn and the thread as it left them.
    const [, turnId, attempt, expires, turnJson, state, meta] = reply as unknown as [string, string, string, string, string | null, (string | null)[], string[]];
    const turn = turnJson ? withTurnState(JSON.parse(turnJson) as TurnRecord, state) : undefined;
    const thread = threadOfMeta(threadId, hashOf(meta));
    if (!turn || !thread) throw new NotFound("turn", turnId);
    return { kind: "assigned", assignment: { turn, thread, leaseId, leaseExpiresAt: Number(expires), attempt: Number(attempt) } };
  }

  async renew(leaseId: string): Promise<number> {
    const threadId = this.threadOf(leaseId);
    const reply = (await this.run(this.renewScript, threadId, [leaseId, String(this.policy.leaseTtlMs)])) as string[];
    if (reply[0] === "CANCELLED") throw new TurnCancelled(`the turn under lease ${leaseId} was cancelled`);
    if (reply[0] === "LOST") throw new LeaseLost(`lease ${leaseId} no longer holds its turn (it lapsed, or the turn ended)`);
    return Number(reply[1]);
  }

  async complete(turnId: string, leaseId: string, output: JsonObject): Promise<TurnRecord> {
    return (await this.end(leaseId, turnId, "complete", JSON.stringify(output), false, false))!;
  }

  async fail(turnId: string, leaseId: string, error: string, retryable: boolean): Promise<TurnRecord> {
    return (await this.end(leaseId, turnId, "fail", error, retryable, false))!;
  }

  async release(leaseId: string, reason: string, onlyIfLapsed: boolean): Promise<void> {
    if (!threadOfLease(leaseId)) return;
    await this.end(leaseId, "", "release", reason, true, onlyIfLapsed);
  }

  async cancel(threadId: string, turnId: string, tenantId: string | undefined, reason: string): Promise<TurnRecord> {
    // The script checks the turn is the thread's and the tenant's.
    const reply = (await this.run(this.cancelScript, threadId, [turnId, reason, newId(), tenantId ?? ""])) as string[];
    const turn = reply[0] === "NOT_FOUND" ? undefined : await this.hot.turnOfThread(threadId, turnId);
    if (!turn) throw new NotFound("turn", turnId);
    return turn;
  }

  async lapsedLeases(limit: number): Promise<string[]> {
    const k = this.hot.keys;
    const now = Date.now();
    const perPartition = await Promise.all(
      Array.from({ length: k.partitions }, (_, p) => this.client.zRangeByScore(k.leases(p), "-inf", now, { LIMIT: { offset: 0, count: limit } })),
    );
    return perPartition.flat().slice(0, limit);
  }

  async holds(leaseId: string): Promise<boolean> {
    const threadId = threadOfLease(leaseId);
    return threadId !== undefined && (await this.client.hGet(this.hot.keys.meta(threadId), "lease")) === leaseId;
  }

  async unstick(threadId: string, agentId: string): Promise<void> {
    await this.run(this.unstickScript, threadId, [agentId]);
  }

  subscribe(listener: (notice: DispatchNotice) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    await unsubscribe?.();
  }

  private async end(
    leaseId: string,
    turnId: string,
    mode: "complete" | "fail" | "release",
    detail: string,
    retryable: boolean,
    onlyIfLapsed: boolean,
  ): Promise<TurnRecord | undefined> {
    const p = this.policy;
    const reply = (await this.run(this.endScript, this.threadOf(leaseId), [
      leaseId,
      turnId,
      mode,
      detail,
      retryable ? "1" : "0",
      String(p.maxAttempts),
      String(p.backoffBaseMs),
      String(p.backoffMaxMs),
      newId(),
      onlyIfLapsed ? "1" : "0",
    ])) as string[];
    if (reply[0] === "CANCELLED") throw new TurnCancelled(`turn ${turnId} was cancelled`);
    if (reply[0] === "LOST") throw new LeaseLost(`lease ${leaseId} does not hold turn ${turnId} (it lapsed, or the turn ended)`);
    if (reply[0] === "NOOP") return undefined; // release of a lease that no longer holds
    const turn = await this.hot.turnOfThread(this.threadOf(leaseId), reply[1]);
    if (!turn) throw new NotFound("turn", reply[1]);
    return turn;
  }

  private threadOf(leaseId: string): string {
    const threadId = threadOfLease(leaseId);
    if (!threadId) throw new LeaseLost(`lease ${JSON.stringify(leaseId)} is not a lease eventide gave out`);
    return threadId;
  }

  /** KEYS and the first ARGV every dispatch script shares (dispatch_lib.lua); what it wrote is on the replicas asked for. */
  private async run(runner: ScriptRunner, threadId: string, args: string[]): Promise<unknown> {
    const k = this.hot.keys;
    const p = k.partition(threadId);
    const keys = [
      k.meta(threadId),
      k.stream(threadId),
      k.partitionLog(p),
      k.eventIndex(p),
      k.turnState(threadId),
      k.turnQueue(threadId),
      k.readyThreads(p),
      k.leases(p),
      k.turns(threadId),
    ];
    const reply = await runner.run(keys, [threadId, k.dispatchChannel(p), ...args]);
    await this.hot.confirmReplicated(threadId);
    return reply;
  }

  private readyHere(threadId: string): void {
    if (this.isEcho(threadId, true)) return;
    const notice: DispatchNotice = { kind: "ready", threadId };
    for (const listener of this.listeners) listener(notice);
  }

  /** Whether a ready notice (from here, or over pub/sub) is the other half of one told already; if not, it is remembered as told. */
  private isEcho(threadId: string, here: boolean): boolean {
    const now = Date.now();
    const told = this.toldReady.get(threadId);
    if (told && told.here !== here && now - told.at < echoWindowMs) {
      this.toldReady.delete(threadId);
      return true;
    }
    if (this.toldReady.size >= maxToldReady) {
      // Halves that never came (pub/sub is at most once, and other processes' submits have none here).
      for (const [id, { at }] of this.toldReady) if (now - at >= echoWindowMs) this.toldReady.delete(id);
    }
    this.toldReady.set(threadId, { at: now, here });
    return false;
  }

  private onMessage(message: string): void {
    const [kind, a, b, c] = message.split(" ");
    let notice: DispatchNotice | undefined;
    if (kind === "ready") {
      // Dropped just after this process told the thread's readiness itself: it is that submit's echo
      // (or another process's notice, which says the same).
      if (this.isEcho(a, false)) return;
      notice = { kind: "ready", threadId: a };
    } else if (kind === "ended") notice = { kind: "lease-ended", turnId: a, leaseId: b, cancelled: c === "1" };
    if (notice) for (const listener of this.listeners) listener(notice);
  }
}

/** How far apart a submit's two ready notices (its return, its pub/sub echo) can come: about a round trip. */
const echoWindowMs = 2_000;
/** Threads remembered at most; past it, those whose other half is overdue are forgotten. */
const maxToldReady = 10_000;

/** An HGETALL answer as a script returns it (field, value, field, value, …) as an object. */
function hashOf(flat: string[]): Record<string, string> {
  const h: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) h[flat[i]] = flat[i + 1];
  return h;
}
