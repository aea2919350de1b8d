// The data-loss alarm: a hole in a thread's log (seqs no tier holds) is the one
// failure eventide must never hide. Whoever finds one (the persister before it
// commits, a read while it stitches the tiers) raises it here: an error log
// line, eventide_data_loss_total, and /readyz lists the latest holes.
import type { Logger } from "pino";
import type { Metrics } from "./metrics.js";

/** Who found the hole: the persister (it then stops acknowledging that batch) or a read (it answers DATA_LOSS). */
export type HoleFinder = "persister" | "read";

export interface Hole {
  threadId: string;
  fromSeq: number;
  toSeq: number;
  foundBy: HoleFinder;
  detail: string;
  /** When it was last found (epoch ms). */
  at: number;
}

/** Holes /readyz lists at most (the newest). */
const holesKept = 20;

export class DataLossAlarm {
  private readonly recent = new Map<string, Hole>();

  constructor(private readonly log: Logger, private readonly metrics?: Metrics) {}

  raise(hole: Omit<Hole, "at">): void {
    const key = `${hole.foundBy} ${hole.threadId} ${hole.fromSeq} ${hole.toSeq}`;
    this.recent.delete(key);
    this.recent.set(key, { ...hole, at: Date.now() });
    if (this.recent.size > holesKept) this.recent.delete(this.recent.keys().next().value!);
    this.metrics?.dataLoss.inc({ found_by: hole.foundBy });
    this.log.error(hole, `DATA LOSS: thread ${hole.threadId} is missing seqs ${hole.fromSeq}..${hole.toSeq} (${hole.detail})`);
  }

  /** The latest holes found by this process, newest last. */
  get holes(): Hole[] {
    return [...this.recent.values()];
  }
}
