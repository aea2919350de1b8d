// The replay scenarios' lean reader: one TailEvents call (follow=false) on
// the wire tail client, reading each event's seq only (to check order and
// count) until caught_up. Connect's client decodes every Event fully at
// about 15 µs an event on this machine, which caps a replay it reads near
// 60,000 events/s whatever the server does; this client shows what the
// server delivers past that.
import { nowMs } from "./clock.js";
import type { Replayed } from "./replay-client.js";
import { eventSeq, wireTail } from "./wire-tail-client.js";
import { WireSessions } from "./wire-sessions.js";

export async function wireReplayFromStart(baseUrl: string, threadId: string, lastSeq: number, timeoutMs: number, perResponse: number): Promise<Replayed> {
  const problems: string[] = [];
  const sessions = new WireSessions(baseUrl, 1);
  let [events, expected, eventBytes, firstEventMs] = [0, 1, 0, Number.NaN];
  let caughtUp: number | undefined;
  const started = nowMs();
  let ended = started;
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve) => {
      // A replay is done at caught_up: the call is cancelled there (as the Connect client's break does).
      const cancel = wireTail(sessions.session(0), { threadId, follow: false, perResponse }, {
        event(buf, from, end) {
          if (events === 0) firstEventMs = nowMs() - started;
          const seq = eventSeq(buf, from, end);
          if (seq !== expected && problems.length < 3) problems.push(`seq ${seq} where ${expected} was due`);
          expected = seq + 1;
          events++;
          eventBytes += end - from;
        },
        caughtUp(seq) {
          caughtUp ??= seq;
          ended = nowMs();
          cancel();
        },
        ended(problem) {
          if (problem && caughtUp === undefined) problems.push(`${problem} after ${events} events`);
          resolve();
        },
      });
      timer = setTimeout(cancel, timeoutMs);
    });
  } finally {
    clearTimeout(timer);
    problems.push(...sessions.errors);
    sessions.close();
  }
  if (caughtUp === undefined && problems.length === 0) problems.push(`no caught_up within ${timeoutMs} ms (${events} events by then)`);
  if (caughtUp !== undefined && caughtUp !== lastSeq) problems.push(`caught_up at ${caughtUp}, the thread ends at ${lastSeq}`);
  if (events !== lastSeq && caughtUp !== undefined) problems.push(`${events} events for seqs 1-${lastSeq}`);
  if (ended === started) ended = nowMs();
  return { events, seconds: (ended - started) / 1000, firstEventMs, bytes: eventBytes, bytesLabel: "encoded event", problems };
}
