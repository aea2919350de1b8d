// EVALSHA, and EVAL on NOSCRIPT: a restarted or failed-over Redis forgets
// scripts, and on a Cluster each master learns each script on first use.
// On one node EVALSHA goes as a plain command: node-redis's evalSha builds the
// same arguments through its command parser first, ~2 µs more a call on the
// append path. A Cluster client needs evalSha to route the call by its first key.
import { createHash } from "node:crypto";
import type { RedisClientType } from "redis";
import type { RedisCommands } from "./hot-redis.js";

export class ScriptRunner {
  private readonly sha: string;
  /** A single-node client's plain command sender; none on a Cluster. */
  private readonly sendCommand?: RedisClientType["sendCommand"];

  constructor(private readonly client: RedisCommands, private readonly source: string) {
    this.sha = createHash("sha1").update(source).digest("hex");
    // A cluster client has masters (and a sendCommand of another shape: first key, read-only flag, arguments).
    if (!("masters" in client) && typeof (client as Partial<RedisClientType>).sendCommand === "function") {
      this.sendCommand = (client as RedisClientType).sendCommand.bind(client);
    }
  }

  async run(keys: string[], args: string[]): Promise<unknown> {
    try {
      return await (this.sendCommand
        ? this.sendCommand(["EVALSHA", this.sha, String(keys.length), ...keys, ...args])
        : this.client.evalSha(this.sha, { keys, arguments: args }));
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      // EVAL caches the script on the node that ran it.
      return this.client.eval(this.source, { keys, arguments: args });
    }
  }
}
