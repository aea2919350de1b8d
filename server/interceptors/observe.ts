// Per-RPC observation: one log line and the RPC metrics per call.
// (Seam for the metrics/logs work: filled in by issue #6.)
import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Metrics } from "../observability/metrics.js";

export function observeRpcs(_log: Logger, _metrics: Metrics): Interceptor {
  return (next) => (req) => next(req);
}
