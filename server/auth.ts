// Who is calling: API keys from the config become callers (tenant + role),
// checked once per RPC by the auth interceptor. Services only ever ask
// `callerOf(ctx)`. With no keys configured, auth is off and every caller is
// the anonymous admin of every tenant, writing as the default tenant.
import { createHash, timingSafeEqual } from "node:crypto";
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { ApiKeyEntry, CallerRole } from "./config.js";

export interface Caller {
  /** The tenant the caller acts for; `*` = every tenant. */
  tenantId: string;
  role: CallerRole;
  /** Names the key in logs and limits without revealing it: `<tenant>/<role>#<position>`. */
  keyName: string;
}

export const defaultTenant = "default";
export const anyTenant = "*";

export const anonymousCaller: Caller = { tenantId: anyTenant, role: "admin", keyName: "anonymous" };

export const callerKey = createContextKey<Caller>(anonymousCaller, { description: "the authenticated caller" });

export function callerOf(ctx: HandlerContext): Caller {
  return ctx.values.get(callerKey);
}

/**
 * How many Authorization headers the request carried, counted from its raw headers:
 * Node's parsed headers keep only the first, so a second one would silently lose.
 * 0 = not counted (in-process calls, whose callers count for themselves).
 */
export const authorizationHeaderCount = createContextKey<number>(0, { description: "Authorization headers of the request" });

export const duplicateAuthorization = "more than one Authorization header";

/** Authorization headers in raw headers (name, value, name, value, …; any case). */
export function countAuthorizationHeaders(rawHeaders: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i].toLowerCase() === "authorization") n++;
  return n;
}

/** Whether the caller may see data of `tenantId`. Another tenant's ids answer NOT_FOUND. */
export function visibleTo(caller: Caller, tenantId: string): boolean {
  return caller.tenantId === anyTenant || caller.tenantId === tenantId;
}

/** The tenant new threads of this caller belong to. */
export function tenantForNewThreads(caller: Caller): string {
  return caller.tenantId === anyTenant ? defaultTenant : caller.tenantId;
}

/** The caller's tenant filter for listings: undefined = every tenant. */
export function tenantFilter(caller: Caller): string | undefined {
  return caller.tenantId === anyTenant ? undefined : caller.tenantId;
}

/** The configured keys, looked up by digest and compared in constant time. */
export class ApiKeys {
  private readonly byDigest = new Map<string, { digest: Buffer; caller: Caller }>();

  constructor(entries: ApiKeyEntry[]) {
    entries.forEach((entry, i) => {
      const digest = sha256(entry.key);
      const caller = { tenantId: entry.tenantId, role: entry.role, keyName: `${entry.tenantId}/${entry.role}#${i + 1}` };
      this.byDigest.set(digest.toString("hex"), { digest, caller });
    });
  }

  get enabled(): boolean {
    return this.byDigest.size > 0;
  }

  /** The caller a presented key stands for; undefined for an unknown key. */
  callerFor(presentedKey: string): Caller | undefined {
    // Hashing first makes the map lookup independent of how much of the secret matched.
    const digest = sha256(presentedKey);
    const found = this.byDigest.get(digest.toString("hex"));
    if (!found || !timingSafeEqual(found.digest, digest)) return undefined;
    return found.caller;
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
