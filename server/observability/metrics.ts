// Prometheus metrics (prom-client), every name prefixed eventide_.
// (Seam for the metrics work: filled in by issue #6.)
import { Registry } from "prom-client";

export class Metrics {
  readonly registry = new Registry();
}
