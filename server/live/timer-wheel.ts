// One timer for many idle wake-ups: entries sit in slots of `resolutionMs`
// and a single Node timer is armed for the earliest slot. Ten thousand idle
// tails then cost ten thousand Set entries, not ten thousand timers (each a
// Timeout object, a closure and a promise) re-armed on every wake-up.

export interface WheelEntry {
  /** Called once, at or a little after the time it was scheduled for (within the resolution). */
  fire(): void;
  /** The slot the wheel filed it under (the wheel's own bookkeeping). */
  wheelSlot?: number;
}

export class TimerWheel {
  private readonly slots = new Map<number, Set<WheelEntry>>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  constructor(private readonly resolutionMs: number) {}

  /** Fires `entry` at `at` (ms since the epoch); an entry scheduled again moves. */
  schedule(entry: WheelEntry, at: number): void {
    this.cancel(entry);
    const slot = Math.ceil(at / this.resolutionMs) * this.resolutionMs;
    let set = this.slots.get(slot);
    if (!set) this.slots.set(slot, (set = new Set()));
    set.add(entry);
    entry.wheelSlot = slot;
    if (slot < this.armedFor) this.arm(slot);
  }

  cancel(entry: WheelEntry): void {
    const slot = entry.wheelSlot;
    if (slot === undefined) return;
    entry.wheelSlot = undefined;
    const set = this.slots.get(slot);
    if (!set) return;
    set.delete(entry);
    if (set.size === 0) this.slots.delete(slot);
  }

  get size(): number {
    let n = 0;
    for (const set of this.slots.values()) n += set.size;
    return n;
  }

  private arm(slot: number): void {
    clearTimeout(this.timer);
    this.armedFor = slot;
    // Unref'd: idle wake-ups alone never keep a process alive.
    this.timer = setTimeout(() => this.tick(), Math.max(0, slot - Date.now())).unref();
  }

  private tick(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = Date.now();
    const due: Set<WheelEntry>[] = [];
    let next = Infinity;
    for (const [slot, set] of this.slots) {
      if (slot <= now) {
        due.push(set);
        this.slots.delete(slot);
      } else if (slot < next) next = slot;
    }
    if (next < Infinity) this.arm(next);
    for (const set of due) {
      for (const entry of set) {
        entry.wheelSlot = undefined;
        entry.fire();
      }
    }
  }
}
