// The thread list: the caller's threads, newest first (ListThreads), polled
// while the tab is visible and refreshed after a submit.
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Thread, ThreadStatus } from "../../gen/eventide/v1/resources_pb.js";
import { turns, withKey } from "./api.js";
import { ago, h } from "./dom.js";

const pollMs = 4_000;

export class ThreadList {
  private active: string | null = null;
  private threads: Thread[] = [];
  private refreshing: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly list: HTMLElement,
    private readonly note: HTMLElement,
  ) {}

  /** Polls until the page goes away; a failed poll is shown and retried on the next tick. */
  start(): void {
    void this.refresh();
    setInterval(() => {
      if (document.visibilityState === "visible") void this.refresh();
    }, pollMs);
  }

  /** Loads the list; asked again while loading, it loads once more after (the first answer may predate the change). */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.again = false;
        await this.load();
      } while (this.again);
    })().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  setActive(threadId: string | null): void {
    this.active = threadId;
    this.render();
  }

  private async load(): Promise<void> {
    try {
      const res = await withKey(() => turns.listThreads({ pageSize: 100 }));
      this.threads = res.threads;
      this.note.textContent = res.threads.length ? "" : "No threads yet: submit a turn to start one.";
      this.note.classList.remove("error");
    } catch (err) {
      this.note.textContent = `Could not list threads: ${err instanceof Error ? err.message : String(err)}`;
      this.note.classList.add("error");
    }
    this.render();
  }

  private render(): void {
    const now = Date.now();
    this.list.replaceChildren(
      ...this.threads.map((t) => {
        const busy = t.status === ThreadStatus.BUSY;
        const updated = t.updatedAt ?? t.createdAt;
        return h(
          "li",
          { "data-testid": "thread-item", "data-thread-id": t.threadId, class: t.threadId === this.active ? "active" : undefined },
          h(
            "a",
            { href: `#/threads/${t.threadId}`, title: t.threadId },
            h("span", { class: "id" }, t.threadId.slice(-10)),
            h("span", { class: `badge ${busy ? "busy" : "idle"}` }, busy ? "busy" : "idle"),
            h("span", { class: "meta" }, `${t.lastSeq} events · ${updated ? ago(timestampDate(updated), now) : ""}`),
          ),
        );
      }),
    );
  }
}
