// The fan-out's Redis floor: what the hot tier's round trips cost a process,
// with no client library. Each append is one XADD of a 1 KiB entry on one
// connection (as the append script writes it), and one blocking XREAD on a
// second connection reads it back (as a server's partition log reader reads
// every append, for its own tails and other servers'). Commands are written
// pre-encoded on raw sockets and replies only scanned for their end, at the
// tail scenario's rate, one append at a time; this process's CPU per append
// is the floor. It runs in the bench process, which is otherwise idle then.
import { randomBytes } from "node:crypto";
import net from "node:net";
import { nowMs, sleep } from "./clock.js";
import type { Measurement } from "./result.js";

/** The floor's row: µs of CPU per append. */
export const redisFloorCpuMetric = "floor, Redis: CPU per append (XADD of the entry, XREAD of it, raw sockets)";

export interface RedisFloorParams {
  scenario: string;
  redisUrl: string;
  ratePerSecond: number;
  seconds: number;
  payloadBytes: number;
}

export async function redisRoundTripFloor(p: RedisFloorParams): Promise<Measurement[]> {
  const url = new URL(p.redisUrl);
  const key = `bench-redis-floor-${randomBytes(4).toString("hex")}`;
  const writer = await RespConnection.open(url);
  const reader = await RespConnection.open(url);
  try {
    const payload = "x".repeat(p.payloadBytes);
    const xadd = command("XADD", key, "*", "d", payload);
    let lastId = "0-0";
    let read = 0;
    let stop = false;
    // The reader follows the stream from where it stands, as the partition log reader does.
    const following = (async () => {
      while (!stop) {
        const reply = await reader.call(command("XREAD", "BLOCK", "200", "STREAMS", key, lastId));
        const ids = reply.toString("latin1").match(/\d+-\d+/g) ?? [];
        if (ids.length > 0) lastId = ids[ids.length - 1];
        read += ids.length;
      }
    })();
    const appends = Math.round(p.ratePerSecond * p.seconds);
    const cpu = process.cpuUsage();
    const started = nowMs();
    for (let i = 0; i < appends; i++) {
      const due = started + (i * 1000) / p.ratePerSecond;
      if (due > nowMs()) await sleep(due - nowMs());
      await writer.call(xadd);
    }
    for (const deadline = nowMs() + 5_000; read < appends && nowMs() < deadline; ) await sleep(5);
    const spent = process.cpuUsage(cpu);
    stop = true;
    await following;
    return [
      { scenario: p.scenario, metric: "floor, Redis: appends written and read back", value: read, unit: "count" },
      { scenario: p.scenario, metric: redisFloorCpuMetric, value: (spent.user + spent.system) / Math.max(1, read), unit: "µs" },
    ];
  } finally {
    await writer.call(command("DEL", key)).catch(() => {});
    writer.close();
    reader.close();
  }
}

/** A RESP array of bulk strings, encoded once. */
function command(...args: string[]): Buffer {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return Buffer.from(out);
}

/** One command at a time on a raw socket; a reply is its bytes, once complete. */
class RespConnection {
  private pending: Buffer[] = [];
  private waiting: ((reply: Buffer) => void) | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.pending.push(chunk);
      const all = this.pending.length === 1 ? chunk : Buffer.concat(this.pending);
      if (replyEnd(all, 0) !== all.length) return;
      this.pending = [];
      const done = this.waiting;
      this.waiting = undefined;
      done?.(all);
    });
  }

  static open(url: URL): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(url.port || 6379), url.hostname, () => resolve(new RespConnection(socket)));
      socket.setNoDelay(true);
      socket.once("error", reject);
    });
  }

  call(bytes: Buffer): Promise<Buffer> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.socket.write(bytes);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Where the RESP value at `at` ends; -1 when incomplete. */
function replyEnd(buf: Buffer, at: number): number {
  const line = buf.indexOf("\r\n", at);
  if (line < 0) return -1;
  const type = String.fromCharCode(buf[at]);
  const n = Number(buf.toString("latin1", at + 1, line));
  let next = line + 2;
  if (type === "$") return n < 0 ? next : next + n + 2 <= buf.length ? next + n + 2 : -1;
  if (type === "*" || type === "%") {
    const items = type === "%" ? 2 * n : n;
    for (let i = 0; i < items; i++) {
      next = replyEnd(buf, next);
      if (next < 0) return -1;
    }
    return next;
  }
  return next; // +, -, : and the like: one line
}
