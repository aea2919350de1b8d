// Page tokens are opaque to clients: base64url JSON of the last row's sort key.
import { InvalidInput } from "./errors.js";

type KeyPart = "seq" | "time" | "id";

export function encodeToken(key: (string | number)[]): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

/**
 * The sort key a token carries, checked against the shape its listing issues:
 * a forged token must never reach a query as a wrong type.
 */
export function decodeToken(token: string, shape: KeyPart[]): (string | number)[] | undefined {
  if (!token) return undefined;
  let key: unknown;
  try {
    key = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    key = undefined;
  }
  if (!Array.isArray(key) || key.length !== shape.length || !shape.every((part, i) => fits(part, key[i]))) {
    throw new InvalidInput("page_token is not one this server issued");
  }
  return key as (string | number)[];
}

function fits(part: KeyPart, value: unknown): boolean {
  if (part === "id") return typeof value === "string" && /^[0-9A-HJKMNP-TV-Z]{26}$/.test(value);
  // Milliseconds within years 1-9999, or a seq.
  const max = part === "time" ? 253_402_300_799_999 : Number.MAX_SAFE_INTEGER;
  const min = part === "time" ? -62_135_596_800_000 : 0;
  return typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max;
}
