// Prometheus metrics (prom-client), every name prefixed eventide_. One
// registry per Metrics object, never the global one: tests run many servers
// in one process. The pieces that count (interceptor, event log, workers)
// receive this object; gauges of shared state are read at scrape time.
import type { DescMethod } from "@bufbuild/protobuf";
import type { Code } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { StoredEvent } from "../domain/records.js";
import type { ArchiveRecord } from "../tiers/warm/warm-store.js";

export const metricsPrefix = "eventide_";

/** Where the dispatch queue depth comes from (TurnDispatch). */
export interface ReadyTurns {
  readyCount(): Promise<number>;
}

/** Where the open streams per API key come from (CallerLimits). */
export interface OpenStreamsByKey {
  openStreamsByKey(): ReadonlyMap<string, number>;
}

/** Why a tailer's live events were dropped (it then catches up from storage). */
export type FanoutDropReason = "buffer" | "resync";

interface RpcSeries {
  requests: Counter.Internal;
  duration: Histogram.Internal<string>;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly registers = [this.registry];
  private processMetrics = false;

  readonly rpcRequests = new Counter({
    name: "eventide_rpc_requests_total",
    help: "RPCs finished, by service, method and Connect code (ok for success)",
    labelNames: ["service", "method", "code"] as const,
    registers: this.registers,
  });
  readonly rpcDuration = new Histogram({
    name: "eventide_rpc_duration_seconds",
    help: "RPC duration, by service, method and code; server streams count until the stream ends",
    labelNames: ["service", "method", "code"] as const,
    // Appends take well under a millisecond; streams last minutes to hours.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600],
    registers: this.registers,
  });
  readonly eventsAppended = new Counter({
    name: "eventide_events_appended_total",
    help: "Events written by CreateThread, SubmitTurn and AppendEvents (retries answered from the log not counted)",
    registers: this.registers,
  });
  readonly activeTails = new Gauge({
    name: "eventide_active_tails",
    help: "TailEvents streams open on this server",
    registers: this.registers,
  });
  readonly activeAgentFeeds = new Gauge({
    name: "eventide_active_agent_feeds",
    help: "ReceiveTurns streams (agent work feeds) open on this server",
    registers: this.registers,
  });
  readonly heapMemorySaver = new Gauge({
    name: "eventide_heap_memory_saver",
    help: "1 while V8's memory saver mode is on because the process has been quiet for EVENTIDE_IDLE_HEAP_TRIM, else 0",
    registers: this.registers,
  });
  readonly heapTrims = new Counter({
    name: "eventide_heap_trims_total",
    help: "Times the process went quiet for EVENTIDE_IDLE_HEAP_TRIM and turned V8's memory saver mode on",
    registers: this.registers,
  });
  readonly fanoutDrops = new Counter({
    name: "eventide_fanout_drops_total",
    help: "Times a following tail lost its live buffer and caught up from storage: buffer = it fell more than EVENTIDE_TAIL_BUFFER events behind, resync = the live feed missed entries",
    labelNames: ["reason"] as const,
    registers: this.registers,
  });
  readonly eventsPersisted = new Counter({
    name: "eventide_events_persisted_total",
    help: "Events the persister committed to Postgres (every event, including the turn lifecycle events dispatch writes)",
    registers: this.registers,
  });
  readonly persistLag = new Histogram({
    name: "eventide_persist_lag_seconds",
    help: "Per event, from its created_at to the commit (and acknowledgement) of its persister batch",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: this.registers,
  });
  readonly dataLoss = new Counter({
    name: "eventide_data_loss_total",
    help: "Holes found in a thread's log (seqs no tier holds although later ones exist), by who found them: persister = a batch it will not commit or acknowledge, read = a read answered DATA_LOSS. Anything above 0 needs an operator",
    labelNames: ["found_by"] as const,
    registers: this.registers,
  });
  readonly persistBatchEvents = new Histogram({
    name: "eventide_persist_batch_events",
    help: "Events in each committed persister batch (one Postgres transaction)",
    buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000],
    registers: this.registers,
  });
  readonly archives = new Counter({
    name: "eventide_archives_total",
    help: "Archive objects written to the cold tier (uploaded, verified, recorded)",
    registers: this.registers,
  });
  readonly archiveBytes = new Counter({
    name: "eventide_archive_bytes_total",
    help: "Compressed bytes of the archive objects written",
    registers: this.registers,
  });
  readonly archivedEvents = new Counter({
    name: "eventide_archived_events_total",
    help: "Events moved from Postgres to the cold tier",
    registers: this.registers,
  });
  readonly leaseExpiries = new Counter({
    name: "eventide_lease_expiries_total",
    help: "Lapsed agent leases the lease sweeper released (the turn requeued or dead-lettered)",
    registers: this.registers,
  });

  /** Per method, per code (0 = ok): labelled series looked up once, not per call. */
  private readonly rpcSeries = new WeakMap<DescMethod, RpcSeries[]>();

  constructor(opts: { dispatch?: ReadyTurns; streams?: OpenStreamsByKey } = {}) {
    const { dispatch, streams } = opts;
    // Zero series from the start: a rate() over a counter that appears late misses its first increase.
    for (const reason of ["buffer", "resync"] satisfies FanoutDropReason[]) this.fanoutDrops.labels(reason).inc(0);
    if (dispatch) {
      new Gauge({
        name: "eventide_dispatch_ready_threads",
        help: "Threads with a turn ready to start (dispatch queue depth, every partition); NaN when the hot tier did not answer",
        registers: this.registers,
        async collect() {
          // A scrape must still answer (process metrics) while Redis is down.
          this.set(await dispatch.readyCount().catch(() => NaN));
        },
      });
    }
    if (streams) {
      new Gauge({
        name: "eventide_open_streams",
        help: "Streams holding one of their caller's slots (EVENTIDE_KEY_MAX_STREAMS), by API key name; key anonymous = every stream opened without a key (EVENTIDE_ANONYMOUS_MAX_STREAMS)",
        labelNames: ["key"] as const,
        registers: this.registers,
        collect() {
          for (const [key, open] of streams.openStreamsByKey()) this.set({ key }, open);
        },
      });
    }
  }

  /** Node process metrics (CPU, memory, event loop, GC), prefixed; only where /metrics is served. */
  includeProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    collectDefaultMetrics({ register: this.registry, prefix: metricsPrefix });
  }

  /** One finished RPC; `code` undefined = ok. */
  rpcFinished(method: DescMethod, code: Code | undefined, seconds: number): void {
    let byCode = this.rpcSeries.get(method);
    if (!byCode) this.rpcSeries.set(method, (byCode = []));
    const index = code ?? 0;
    let series = byCode[index];
    if (!series) {
      const labels = [method.parent.typeName, method.name, code === undefined ? "ok" : codeToString(code)];
      series = byCode[index] = { requests: this.rpcRequests.labels(...labels), duration: this.rpcDuration.labels(...labels) };
    }
    series.requests.inc();
    series.duration.observe(seconds);
  }

  /** A committed persister batch. */
  persisted(events: StoredEvent[]): void {
    const now = Date.now();
    this.eventsPersisted.inc(events.length);
    this.persistBatchEvents.observe(events.length);
    for (const e of events) {
      // Clamped: created_at comes from the hot tier's clock (Redis TIME), which may run ahead.
      const lagMs = Math.max(0, now - e.createdAt);
      if (Number.isFinite(lagMs)) this.persistLag.observe(lagMs / 1000);
    }
  }

  /** An archive object written and recorded. */
  archived(archive: ArchiveRecord): void {
    this.archives.inc();
    this.archiveBytes.inc(archive.bytes);
    this.archivedEvents.inc(archive.eventCount);
  }

  fanoutDropped(reason: FanoutDropReason): void {
    this.fanoutDrops.inc({ reason });
  }
}
