// Page tokens are opaque to clients: base64url JSON of the last row's sort key.
import { InvalidInput } from "./errors.js";

export function encodeToken(key: (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

export function decodeToken(token: string): (string | number)[] | undefined {
  if (!token) return undefined;
  try {
    const key = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(key) && key.every((k) => typeof k === "string" || typeof k === "number")) return key;
  } catch {
    // fall through
  }
  throw new InvalidInput("page_token is not one this server issued");
}
