// Seqs are gapless: every check that a log, a page or a batch has no hole is
// one of these two walks.

export interface SeqGap {
  fromSeq: number;
  toSeq: number;
}

/**
 * The first seqs missing for a log that holds 1..heldThrough to take `seqs`
 * (ascending; those at or below what it holds are redeliveries) and reach
 * `through` (the last seq it must hold after; 0 = the last of `seqs`).
 */
export function firstGap(seqs: readonly number[], heldThrough: number, through = 0): SeqGap | undefined {
  let next = heldThrough + 1;
  for (const seq of seqs) {
    if (seq < next) continue;
    if (seq > next) return { fromSeq: next, toSeq: seq - 1 };
    next = seq + 1;
  }
  return through >= next ? { fromSeq: next, toSeq: through } : undefined;
}

/** Where a page of events stops following on from `afterSeq` (seq after + 1, + 2, …): the index of the first that does not, or -1. */
export function breakIn(page: readonly { seq: number }[], afterSeq: number): number {
  for (let i = 0; i < page.length; i++) if (page[i].seq !== afterSeq + 1 + i) return i;
  return -1;
}
