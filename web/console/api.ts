// The console's client (@eventide/client over connect-web): Connect over
// HTTP/1.1 (fetch) to the server that served the page, with the API key (if
// one was entered) as a bearer token.
import { Code, ConnectError } from "@connectrpc/connect";
import { createWebClient } from "../../clients/typescript/src/web.js";

const keyItem = "eventide.apiKey";

/** The key entered in this tab (sessionStorage: gone when the tab closes). */
export function apiKey(): string | null {
  return sessionStorage.getItem(keyItem);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(keyItem, key);
  else sessionStorage.removeItem(keyItem);
}

// The key is asked for on each call: one entered later is used from then on.
export const client = createWebClient({ baseUrl: location.origin, apiKey });
export const turns = client.turns;
export const events = client.events;

export function isUnauthenticated(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Unauthenticated;
}

/**
 * Asks for a key when a call is refused as UNAUTHENTICATED. Set by the page;
 * every caller waiting at once shares one prompt.
 */
let promptForKey: (reason: string) => Promise<void> = () => Promise.reject(new Error("no key prompt"));
let pending: Promise<void> | undefined;

export function onKeyNeeded(prompt: (reason: string) => Promise<void>): void {
  promptForKey = prompt;
}

export function askForKey(reason: string): Promise<void> {
  pending ??= promptForKey(reason).finally(() => (pending = undefined));
  return pending;
}

/** Why the prompt shows up: no key yet, or the one entered was refused. */
export function keyRefusal(): string {
  return apiKey() ? "That key was refused." : "This server requires an API key.";
}

/** Runs a call; when it is refused for want of a (valid) key, asks for one and tries again. */
export async function withKey<T>(call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (!isUnauthenticated(err)) throw err;
      await askForKey(keyRefusal());
    }
  }
}
