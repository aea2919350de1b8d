// Which persister holds which partition: a lease key per partition (in the
// partition's slot), renewed and released only by its holder, and a
// heartbeat set that counts the live persisters.
import { readFileSync } from "node:fs";
import type { PartitionLeases } from "../hot-log.js";
import type { RedisCommands } from "./hot-redis.js";
import type { HotKeys } from "./keys.js";
import { ScriptRunner } from "./script-runner.js";

const script = (name: string) => readFileSync(new URL(`./scripts/${name}`, import.meta.url), "utf8");

export class RedisPartitionLeases implements PartitionLeases {
  private readonly renewScript: ScriptRunner;
  private readonly releaseScript: ScriptRunner;

  constructor(private readonly client: RedisCommands, private readonly keys: HotKeys) {
    this.renewScript = new ScriptRunner(client, script("lease_renew.lua"));
    this.releaseScript = new ScriptRunner(client, script("lease_release.lua"));
  }

  private key(p: number): string {
    return `${this.keys.prefix}:{${p}}:persister`;
  }

  async acquire(p: number, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.client.set(this.key(p), owner, { NX: true, PX: ttlMs })) === "OK";
  }

  async renew(p: number, owner: string, ttlMs: number): Promise<boolean> {
    return Number(await this.renewScript.run([this.key(p)], [owner, String(ttlMs)])) === 1;
  }

  async release(p: number, owner: string): Promise<void> {
    await this.releaseScript.run([this.key(p)], [owner]);
  }

  async heartbeat(owner: string, ttlMs: number): Promise<number> {
    const key = `${this.keys.prefix}:persisters`;
    const now = Date.now();
    await this.client.zAdd(key, { score: now + ttlMs, value: owner });
    await this.client.zRemRangeByScore(key, "-inf", now);
    return this.client.zCard(key);
  }
}
