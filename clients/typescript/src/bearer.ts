// The API key as `Authorization: Bearer …` on every call.
import type { Interceptor } from "@connectrpc/connect";

/** A fixed key, or a function asked on each call (a key the user may enter or change later). */
export type ApiKey = string | (() => string | null | undefined);

export function bearer(apiKey: ApiKey): Interceptor {
  return (next) => (req) => {
    const key = typeof apiKey === "function" ? apiKey() : apiKey;
    if (key) req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
}
