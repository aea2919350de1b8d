// Where a tail stands, and what each arriving seq means for it. The server
// promises strictly increasing seqs with no gap; this checks the promise so a
// broken one costs a re-read, never a lost or doubled event.

/** deliver: the next event. duplicate: already delivered, drop it. gap: an event is missing, re-read. */
export type Verdict = "deliver" | "duplicate" | "gap";

export class TailCursor {
  /**
   * @param position every seq up to this one is delivered (or, filtered, was scanned)
   * @param filtered types/turn filters skip seqs, so only order can be checked, not contiguity
   */
  constructor(
    public position: number,
    readonly filtered: boolean,
  ) {}

  /** An event arrived. */
  accept(seq: number): Verdict {
    if (seq <= this.position) return "duplicate";
    if (!this.filtered && seq !== this.position + 1) return "gap";
    this.position = seq;
    return "deliver";
  }

  /**
   * The server says it scanned every seq up to `seq` (heartbeat, caught-up).
   * A filtered tail may resume after it; an unfiltered one must already have
   * had every one of those events, or one is missing.
   */
  scanned(seq: number): "ok" | "gap" {
    if (seq <= this.position) return "ok";
    if (!this.filtered) return "gap";
    this.position = seq;
    return "ok";
  }
}
