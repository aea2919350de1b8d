// EVALSHA, and EVAL on NOSCRIPT: a restarted or failed-over Redis forgets
// scripts, and on a Cluster each master learns each script on first use.
import { createHash } from "node:crypto";
import type { RedisCommands } from "./hot-redis.js";

export class ScriptRunner {
  private readonly sha: string;

  constructor(private readonly client: RedisCommands, private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.client.evalSha(this.sha, { keys, arguments: args });
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      // EVAL caches the script on the node that ran it.
      return this.client.eval(this.source, { keys, arguments: args });
    }
  }
}
