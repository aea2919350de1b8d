// A thread's events in seq order: `message.delta` pieces join into one growing
// message per turn attempt; every other event is a compact row (seq, type,
// time) that opens to show its payload. Every rendered event carries its seq
// in `data-seq`, once.
import type { JsonObject } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Event } from "../../gen/eventide/v1/resources_pb.js";
import { clock, h } from "./dom.js";

interface Message {
  el: HTMLElement;
  text: HTMLElement;
  seqs: HTMLElement;
  firstSeq: bigint;
}

export class Timeline {
  /** `turn|message_id|attempt` → its message. */
  private messages = new Map<string, Message>();
  /** turn id → how many times it started (a retried turn streams its reply again). */
  private attempts = new Map<string, number>();
  private scrollQueued = false;

  constructor(private readonly root: HTMLElement) {}

  clear(): void {
    this.root.replaceChildren();
    this.messages.clear();
    this.attempts.clear();
  }

  add(event: Event): void {
    const payload = (event.payload ?? {}) as JsonObject;
    // Stay at the end if the reader was there (a queued scroll means they were).
    const follow = this.scrollQueued || this.atBottom();
    if (event.type === "message.delta" && typeof payload.delta === "string") {
      this.addDelta(event, payload.delta, String(payload.message_id ?? ""));
    } else {
      if (event.type === "turn.started") this.attempts.set(event.turnId, this.attempt(event.turnId) + 1);
      if (event.type === "message.completed" || event.type.startsWith("turn.")) this.finish(event);
      this.root.append(row(event, payload));
    }
    if (follow) this.scrollToEnd();
  }

  private addDelta(event: Event, delta: string, messageId: string): void {
    const attempt = this.attempt(event.turnId);
    const key = `${event.turnId}|${messageId}|${attempt}`;
    let message = this.messages.get(key);
    if (!message) {
      const text = h("div", { class: "text" });
      const seqs = h("span", { class: "seqs" });
      const label = `agent${attempt > 1 ? ` · attempt ${attempt}` : ""}`;
      const el = h(
        "article",
        { class: "message streaming", "data-testid": "message", "data-turn-id": event.turnId, "data-message-id": messageId, "data-attempt": String(attempt) },
        h("header", {}, h("span", { class: "who" }, label), seqs, h("time", {}, clock(created(event)))),
        text,
      );
      message = { el, text, seqs, firstSeq: event.seq };
      this.messages.set(key, message);
      this.root.append(el);
    }
    message.text.append(h("span", { class: "token", "data-seq": String(event.seq), title: `seq ${event.seq}` }, delta));
    message.seqs.textContent = event.seq === message.firstSeq ? `#${event.seq}` : `#${message.firstSeq}–${event.seq}`;
  }

  /** The turn's messages stop streaming when the message completes or the turn ends. */
  private finish(event: Event): void {
    const messageId = String((event.payload as JsonObject | undefined)?.message_id ?? "");
    for (const [key, message] of this.messages) {
      const [turnId, id] = key.split("|");
      if (turnId !== event.turnId || !message.el.classList.contains("streaming")) continue;
      if (event.type === "message.completed" && id !== messageId) continue;
      message.el.classList.remove("streaming");
      // Retried, failed or cancelled before its message completed: the reply was cut off.
      if (event.type !== "message.completed" && event.type !== "turn.completed") message.el.classList.add("interrupted");
    }
  }

  private attempt(turnId: string): number {
    return this.attempts.get(turnId) ?? 0;
  }

  private atBottom(): boolean {
    return this.root.scrollHeight - this.root.scrollTop - this.root.clientHeight < 48;
  }

  /** One scroll per frame, however many events arrived in it. */
  private scrollToEnd(): void {
    if (this.scrollQueued) return;
    this.scrollQueued = true;
    requestAnimationFrame(() => {
      this.scrollQueued = false;
      this.root.scrollTop = this.root.scrollHeight;
    });
  }
}

function row(event: Event, payload: JsonObject): HTMLElement {
  const kind = event.type.split(".")[0];
  const details = {
    event_id: event.eventId,
    turn_id: event.turnId || undefined,
    level: event.level,
    metadata: Object.keys(event.metadata).length ? event.metadata : undefined,
    payload,
  };
  return h(
    "details",
    { class: `row kind-${kind} level-${event.level || "info"}`, "data-testid": "event-row", "data-seq": String(event.seq), "data-type": event.type },
    h(
      "summary",
      {},
      h("span", { class: "seq" }, `#${event.seq}`),
      h("span", { class: "type" }, event.type),
      h("span", { class: "gist" }, gist(event.type, payload)),
      h("time", {}, clock(created(event))),
    ),
    h("pre", {}, JSON.stringify(details, null, 2)),
  );
}

/** One line that says what the event is about, without opening it. */
function gist(type: string, payload: JsonObject): string {
  const input = payload.input as JsonObject | undefined;
  if (type === "turn.submitted") return typeof input?.text === "string" ? `“${input.text}”` : JSON.stringify(input ?? {});
  for (const key of ["error", "reason", "name", "text", "content", "agent_id"]) {
    const value = payload[key];
    if (typeof value === "string" && value) return value;
  }
  return "";
}

function created(event: Event): Date {
  return event.createdAt ? timestampDate(event.createdAt) : new Date();
}
