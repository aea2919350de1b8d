// EVALSHA with a reload on NOSCRIPT (a restarted or failed-over Redis forgets scripts).
import type { RedisClientType } from "redis";

export class ScriptRunner {
  private sha?: string;

  constructor(private readonly client: RedisClientType, private readonly source: string) {}

  async run(keys: string[], args: string[]): Promise<unknown> {
    this.sha ??= await this.client.scriptLoad(this.source);
    try {
      return await this.client.evalSha(this.sha, { keys, arguments: args });
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      this.sha = await this.client.scriptLoad(this.source);
      return this.client.evalSha(this.sha, { keys, arguments: args });
    }
  }
}
