// Records the writes that reach the tiers, for tests that check a refused call
// wrote nothing: the mutating methods of the hot log, the dispatch state and
// the warm and cold stores are wrapped on the instances the server uses, and
// each call that returned having written is listed. The persister's copies into
// the warm tier are left out: they trail earlier hot-tier writes at their own pace,
// and a call's own write would show in the hot tier first.
import type { ClaimResult } from "../../server/tiers/hot/turn-dispatch.js";
import type { AppendResult } from "../../server/tiers/hot/hot-log.js";
import type { Tiers } from "../../server/tiers/open-tiers.js";

const mutating = {
  hot: ["append", "restoreThread", "deleteThread"],
  dispatch: ["claim", "renew", "complete", "fail", "release", "cancel", "unstick"],
  warm: ["commitArchive", "eraseThread"],
  cold: ["put", "delete"],
} as const;

export interface WriteSpy {
  /** "tier.method" of every write since the last clear(), in order. */
  readonly writes: string[];
  clear(): void;
  restore(): void;
}

export function spyOnWrites(tiers: Tiers): WriteSpy {
  const writes: string[] = [];
  const restores: (() => void)[] = [];
  for (const [tier, methods] of Object.entries(mutating) as [keyof typeof mutating, readonly string[]][]) {
    const target = tiers[tier] as unknown as Record<string, unknown>;
    for (const method of methods) {
      const own = Object.prototype.hasOwnProperty.call(target, method);
      const original = target[method] as (...args: unknown[]) => Promise<unknown>;
      target[method] = async (...args: unknown[]) => {
        const result = await original.apply(target, args);
        if (wrote(method, args, result)) writes.push(`${tier}.${method}`);
        return result;
      };
      restores.push(() => {
        if (own) target[method] = original;
        else delete target[method];
      });
    }
  }
  return {
    writes,
    clear: () => void writes.splice(0),
    restore: () => restores.forEach((r) => r()),
  };
}

function wrote(method: string, args: unknown[], result: unknown): boolean {
  if (method === "append") return (result as AppendResult).kind === "appended";
  if (method === "claim") return (result as ClaimResult).kind === "assigned";
  if (method === "delete") return (args[0] as unknown[]).length > 0;
  return true;
}
