// Who is calling. Until API keys arrive (auth off), every caller is the
// default tenant's admin; services only ever ask `callerOf(ctx)`.
import { createContextKey, type HandlerContext } from "@connectrpc/connect";

export interface Caller {
  tenantId: string;
  role: "client" | "agent" | "admin";
}

export const defaultTenant = "default";

export const callerKey = createContextKey<Caller>({ tenantId: defaultTenant, role: "admin" }, { description: "the authenticated caller" });

export function callerOf(ctx: HandlerContext): Caller {
  return ctx.values.get(callerKey);
}
