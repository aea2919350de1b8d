"""A one-shot cancellation signal with callbacks, shared between threads.

The Python counterpart of an AbortSignal: a tail or an agent stops when its
signal fires, and a turn handler's signal fires on cancellation, lease loss or
shutdown. It also has threading.Event's `is_set()` and `wait()`.
"""

from __future__ import annotations

import threading
from typing import Callable, List, Optional, Union


class Cancellation:
    def __init__(self, parent: Optional["Cancellation"] = None) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: List[Callable[[str], None]] = []
        self.reason: Optional[str] = None
        self._detach: Callable[[], None] = lambda: None
        if parent is not None:
            self._detach = parent.add_callback(self.cancel)

    def cancel(self, reason: str = "cancelled") -> None:
        """Fires the signal (once; later calls change nothing)."""
        with self._lock:
            if self._event.is_set():
                return
            self.reason = reason
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        self._detach()
        for callback in callbacks:
            callback(reason)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Waits until cancelled or `timeout` seconds pass; True when cancelled."""
        return self._event.wait(timeout)

    def add_callback(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Calls `callback(reason)` when the signal fires (at once if it has); returns a remover."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._remove(callback)
        callback(self.reason or "cancelled")
        return lambda: None

    def detach(self) -> None:
        """Stops following the parent (a finished child need not be kept alive by it)."""
        self._detach()

    def _remove(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)


Stop = Union[Cancellation, threading.Event, None]


def as_cancellation(stop: Stop) -> Cancellation:
    """A Cancellation that fires when `stop` does: itself, or one watching a threading.Event."""
    if isinstance(stop, Cancellation):
        return Cancellation(parent=stop)
    cancellation = Cancellation()
    if stop is not None:
        # threading.Event has no callbacks: a daemon thread watches it until either fires.
        def watch() -> None:
            while not cancellation.cancelled:
                if stop.wait(0.1):
                    cancellation.cancel("stopped")

        threading.Thread(target=watch, name="eventide-stop-watch", daemon=True).start()
    return cancellation
