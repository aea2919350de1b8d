// Event payloads of the benchmark.
import { randomBytes } from "node:crypto";
import type { JsonObject } from "@bufbuild/protobuf";

export const benchEventType = "bench.tick";

/** About 1 KiB as JSON ({"delta":"xxx…"} is 1,012 bytes). */
export const kibPayload: JsonObject = { delta: "x".repeat(1000) };

/** A payload and its JSON text (appends take both, as AppendEvents passes them on). */
export interface Payload {
  object: JsonObject;
  json: string;
}

/** Where a seeder's payloads come from: the same one every time, or a fresh one each call. */
export type PayloadSource = () => Payload;

export function fixedPayload(object: JsonObject): PayloadSource {
  const payload = { object, json: JSON.stringify(object) };
  return () => payload;
}

/**
 * `bytes` bytes of JSON ({"delta":"<hex>"}), different every call: archives
 * compress like real data (about 2:1) instead of to nothing.
 */
export function randomPayloads(bytes: number): PayloadSource {
  const chars = Math.max(0, bytes - '{"delta":""}'.length);
  return () => {
    const object = { delta: randomBytes(Math.ceil(chars / 2)).toString("hex").slice(0, chars) };
    return { object, json: JSON.stringify(object) };
  };
}
