// Event payloads of the benchmark.
import type { JsonObject } from "@bufbuild/protobuf";

export const benchEventType = "bench.tick";

/** About 1 KiB as JSON ({"delta":"xxx…"} is 1,012 bytes). */
export const kibPayload: JsonObject = { delta: "x".repeat(1000) };
