// The eventide console: a thread list, a live view of one thread's log and a
// box to submit turns. The open thread lives in the URL (#/threads/<id>).
import "./console.css";
import { ConnectError } from "@connectrpc/connect";
import { apiKey, onKeyNeeded, setApiKey, turns, withKey } from "./api.js";
import { byId } from "./dom.js";
import { followThread, type TailStatus } from "./tail.js";
import { ThreadList } from "./threads.js";
import { Timeline } from "./timeline.js";

const threadIdPattern = /^#\/threads\/([0-9A-HJKMNP-TV-Z]{26})$/;

const timeline = new Timeline(byId("timeline"));
const threads = new ThreadList(byId("thread-list"), byId("threads-note"));
const statusEl = byId("tail-status");
const lastSeqEl = byId("last-seq");
const duplicatesEl = byId("duplicates");
const gapBanner = byId("gap-banner");
const errorBanner = byId("error-banner");
const input = byId<HTMLTextAreaElement>("turn-input");
const submit = byId<HTMLButtonElement>("submit-turn");
const forgetKey = byId<HTMLButtonElement>("forget-key");

let openThreadId: string | null = null;
let tail: AbortController | null = null;

const statusText: Record<TailStatus, string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  "needs-key": "waiting for a key",
  failed: "stopped",
};

function showThread(threadId: string | null): void {
  if (threadId === openThreadId) return;
  tail?.abort();
  tail = null;
  openThreadId = threadId;
  timeline.clear();
  gapBanner.hidden = true;
  errorBanner.hidden = true;
  duplicatesEl.hidden = true;
  duplicatesEl.dataset.count = "0";
  threads.setActive(threadId);
  byId("thread-title").textContent = threadId ? `Thread ${threadId}` : "New thread";
  byId("thread-hint").textContent = threadId ? "" : "Your first turn creates the thread.";
  if (!threadId) {
    setStatus("idle", "no thread");
    showSeq(0);
    return;
  }
  tail = new AbortController();
  let duplicates = 0;
  let live = false;
  void followThread(
    threadId,
    {
      event: (event) => {
        timeline.add(event);
        showSeq(Number(event.seq));
        // A live turn started or ended: the thread list's status and counts changed.
        if (live && event.type.startsWith("turn.")) void threads.refresh();
      },
      status: (status, lastSeq, detail) => {
        live = status === "live";
        setStatus(status, statusText[status], detail);
        showSeq(lastSeq);
        if (status === "failed") showError(`The tail stopped: ${detail}`);
      },
      gap: (expected, got) => {
        gapBanner.textContent = `Gap in the log: expected seq ${expected}, got ${got}.`;
        gapBanner.hidden = false;
      },
      duplicate: (seq) => {
        duplicates++;
        duplicatesEl.dataset.count = String(duplicates);
        duplicatesEl.textContent = `${duplicates} duplicate${duplicates > 1 ? "s" : ""} dropped (last: seq ${seq})`;
        duplicatesEl.hidden = false;
      },
    },
    tail.signal,
  );
}

function setStatus(status: TailStatus | "idle", text: string, detail?: string): void {
  statusEl.className = `status ${status}`;
  statusEl.dataset.status = status;
  statusEl.textContent = text;
  statusEl.title = detail ?? "";
}

/** The last seq seen on the open thread. */
function showSeq(seq: number): void {
  lastSeqEl.textContent = `seq ${seq || "–"}`;
  lastSeqEl.dataset.seq = String(seq);
}

function showError(message: string): void {
  errorBanner.textContent = message;
  errorBanner.hidden = false;
}

function route(): void {
  showThread(threadIdPattern.exec(location.hash)?.[1] ?? null);
}

async function submitTurn(): Promise<void> {
  const text = input.value.trim();
  if (!text) return;
  submit.disabled = true;
  errorBanner.hidden = true;
  try {
    const res = await withKey(() => turns.submitTurn({ threadId: openThreadId ?? "", input: { text } }));
    input.value = "";
    const threadId = res.thread!.threadId;
    if (threadId !== openThreadId) location.hash = `#/threads/${threadId}`;
    void threads.refresh();
  } catch (err) {
    showError(`The turn was not submitted: ${ConnectError.from(err).rawMessage}`);
  } finally {
    submit.disabled = false;
    input.focus();
  }
}

/** The key prompt: resolves once a key was entered (the refused call then retries with it). */
function promptForKey(reason: string): Promise<void> {
  const dialog = byId<HTMLDialogElement>("key-dialog");
  const keyInput = byId<HTMLInputElement>("key-input");
  byId("key-reason").textContent = reason;
  keyInput.value = "";
  return new Promise((resolve) => {
    const entered = (e: SubmitEvent) => {
      e.preventDefault();
      const key = keyInput.value.trim();
      if (!key) return;
      setApiKey(key);
      forgetKey.hidden = false;
      byId("key-form").removeEventListener("submit", entered as EventListener);
      dialog.close();
      resolve();
    };
    byId("key-form").addEventListener("submit", entered as EventListener);
    if (!dialog.open) dialog.showModal();
    keyInput.focus();
  });
}

onKeyNeeded(promptForKey);
// Escape would leave the page without a key and every call waiting: the dialog stays open.
byId("key-dialog").addEventListener("cancel", (e) => e.preventDefault());
forgetKey.hidden = !apiKey();
forgetKey.addEventListener("click", () => {
  setApiKey(null);
  location.reload();
});
byId("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  void submitTurn();
});
input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    void submitTurn();
  }
});
window.addEventListener("hashchange", route);
route();
threads.start();
