// What a process costs, read from /proc: the CPU a server child (and any
// process it started) spent over a measured phase, the bench process's own
// (a Node load generator) and that of the C load generators it ran (h2load,
// reaped by then), and a process's resident memory. Linux only; elsewhere the
// figures are NaN and the rows say n/a.
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux, whatever HZ the kernel runs at). */
const ticksPerSecond = 100;
const usPerTick = 1e6 / ticksPerSecond;

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number | "self"): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

// Indexes into statFields: the stat fields 4 (ppid), 14 to 17 (utime, stime, cutime, cstime) less the first two.
const ppidAt = 1;
const utimeAt = 11;
const cutimeAt = 13;

/** User + system CPU of one process, in µs; with `reaped`, also that of its children it has waited for. */
function processCpuUs(pid: number | "self", reaped: boolean): number {
  const f = statFields(pid);
  if (!f) return Number.NaN;
  const ticks = Number(f[utimeAt]) + Number(f[utimeAt + 1]) + (reaped ? Number(f[cutimeAt]) + Number(f[cutimeAt + 1]) : 0);
  return ticks * usPerTick;
}

/** Every live process below `pid` (children, their children, …). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const parent = Number(statFields(Number(name))?.[ppidAt]);
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent)!.push(Number(name));
  }
  const found: number[] = [];
  for (let queue = [pid]; queue.length > 0; ) {
    const next = children.get(queue.shift()!) ?? [];
    found.push(...next);
    queue.push(...next);
  }
  return found;
}

/** A server's CPU so far in µs: its own, its reaped children's, and its live descendants'. */
export function treeCpuUs(pid: number): number {
  let total = processCpuUs(pid, true);
  try {
    for (const child of descendants(pid)) total += processCpuUs(child, false) || 0;
  } catch {
    return Number.NaN;
  }
  return total;
}

/** Resident memory of a process (VmRSS of /proc/<pid>/status), in MB (10^6 bytes). */
export function rssMb(pid: number): number {
  try {
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kib === undefined ? Number.NaN : (Number(kib) * 1024) / 1e6;
  } catch {
    return Number.NaN;
  }
}

/** CPU spent over a phase, in µs. */
export interface CpuSpent {
  /** The server child and its descendants. */
  server: number;
  /** This (bench) process: the Node load generator and clients. */
  bench: number;
  /** The bench's children that exited during the phase (h2load runs). */
  spawned: number;
  wallSeconds: number;
}

/** This process's own CPU in µs (finer than /proc's ticks). */
function cpuUsageUs(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** Starts measuring; the returned function gives what was spent since (call it once the phase is over). */
export function startCpuMeter(serverPid: number): () => CpuSpent {
  const at = () => ({
    server: treeCpuUs(serverPid),
    bench: cpuUsageUs(),
    spawned: processCpuUs("self", true) - processCpuUs("self", false),
    wall: performance.now(),
  });
  const before = at();
  return () => {
    const after = at();
    return {
      server: after.server - before.server,
      bench: after.bench - before.bench,
      spawned: after.spawned - before.spawned,
      wallSeconds: (after.wall - before.wall) / 1000,
    };
  };
}
