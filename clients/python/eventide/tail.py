"""A thread's events as an iterator that resumes by itself.

It reconnects (with backoff and jitter) after UNAVAILABLE, DEADLINE_EXCEEDED, a
dropped connection or a server restart, from the last seq it delivered, and it
never delivers a seq twice or skips one: an unfiltered tail checks that each seq
is the last one + 1 and re-reads from there on a gap. A filtered tail (types or
turn_id) cannot see gaps, so it resumes after the heartbeat's scanned seq when
that is further on. Requests the server refuses for good (NOT_FOUND,
PERMISSION_DENIED, UNAUTHENTICATED, INVALID_ARGUMENT, OUT_OF_RANGE, …) end it
with that grpc.RpcError.
"""

from __future__ import annotations

import threading
from typing import Callable, Iterator, Optional, Sequence

import grpc

from ._gen.eventide.v1 import event_service_pb2, event_service_pb2_grpc, resources_pb2
from .cancellation import Stop, as_cancellation
from .retry import TERMINAL_CODES, Backoff, status_code


class Tail:
    """Iterate it for `eventide.v1.Event` messages; `close()` (from any thread) or `stop` ends it."""

    def __init__(
        self,
        events: event_service_pb2_grpc.EventServiceStub,
        thread_id: str,
        after_seq: int = 0,
        types: Sequence[str] = (),
        turn_id: Optional[str] = None,
        follow: bool = True,
        batch: int = 0,
        stop: Stop = None,
        backoff: Optional[Backoff] = None,
        on_caught_up: Optional[Callable[[int], None]] = None,
        on_heartbeat: Optional[Callable[[int], None]] = None,
        on_reconnect: Optional[Callable[[BaseException, float], None]] = None,
    ) -> None:
        self._events = events
        self.thread_id = thread_id
        self.types = tuple(types)
        self.turn_id = turn_id or ""
        self.follow = follow
        self.batch = batch
        self.filtered = bool(self.types or self.turn_id)
        self.last_seq = after_seq
        """The seq of the last event delivered (or `after_seq`)."""
        self.resume_after = after_seq
        """Where a reconnect starts: `last_seq`, or a filtered tail's scanned seq."""
        self.caught_up = False
        """True once the current connection has delivered the history."""
        self.reconnects = 0
        self._backoff = backoff or Backoff()
        self._on_caught_up = on_caught_up
        self._on_heartbeat = on_heartbeat
        self._on_reconnect = on_reconnect
        self._stop = as_cancellation(stop)
        self._lock = threading.Lock()
        self._call: Optional[grpc.Call] = None
        self._stop.add_callback(lambda _reason: self._cancel_call())
        self._iterator = self._run()

    def __iter__(self) -> "Tail":
        return self

    def __next__(self) -> resources_pb2.Event:
        return next(self._iterator)

    def __enter__(self) -> "Tail":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Ends the tail: a `next()` blocked in another thread returns StopIteration."""
        self._stop.cancel("closed")

    def _cancel_call(self) -> None:
        with self._lock:
            call = self._call
        if call is not None:
            call.cancel()

    def _open(self) -> grpc.Call:
        request = event_service_pb2.TailEventsRequest(
            thread_id=self.thread_id,
            after_seq=self.resume_after,
            follow=self.follow,
            types=self.types,
            turn_id=self.turn_id,
            max_events_per_response=self.batch,
        )
        call = self._events.TailEvents(request)
        with self._lock:
            self._call = call
        if self._stop.cancelled:
            call.cancel()
        return call

    def _run(self) -> Iterator[resources_pb2.Event]:
        try:
            while not self._stop.cancelled:
                call = self._open()
                self.caught_up = False
                failure: Optional[BaseException] = None
                try:
                    for response in call:
                        self._backoff.reset()
                        kind = response.WhichOneof("item")
                        if kind == "event":
                            batch: Sequence[resources_pb2.Event] = (response.event,)
                        elif kind == "events":
                            batch = response.events.events
                        elif kind == "caught_up":
                            self.caught_up = True
                            if self._on_caught_up:
                                self._on_caught_up(response.caught_up.last_seq)
                            continue
                        elif kind == "heartbeat":
                            if self.filtered:
                                self.resume_after = max(self.resume_after, response.heartbeat.scanned_seq)
                            if self._on_heartbeat:
                                self._on_heartbeat(response.heartbeat.scanned_seq)
                            continue
                        else:
                            continue  # an item kind newer than this client
                        gap = None
                        for event in batch:
                            if event.seq <= self.last_seq:
                                continue  # already delivered: never twice
                            if not self.filtered and event.seq != self.last_seq + 1:
                                gap = event.seq
                                break
                            self.last_seq = event.seq
                            self.resume_after = max(self.resume_after, event.seq)
                            yield event
                        if gap is not None:
                            failure = GapError(self.thread_id, self.last_seq, gap)
                            break
                    else:
                        if not self.follow:
                            return  # the history is all there was to read
                        failure = EndedError("the server ended the stream")
                except grpc.RpcError as err:
                    if self._stop.cancelled:
                        return
                    if status_code(err) in TERMINAL_CODES:
                        raise
                    failure = err
                finally:
                    with self._lock:
                        self._call = None
                    call.cancel()
                if self._stop.cancelled:
                    return
                delay = self._backoff.next_delay()
                self.reconnects += 1
                if self._on_reconnect:
                    self._on_reconnect(failure, delay)
                if self._stop.wait(delay):
                    return
        finally:
            self._stop.cancel("ended")


class GapError(Exception):
    """A seq arrived that is not the last one + 1: the tail re-reads from the last one."""

    def __init__(self, thread_id: str, last_seq: int, got_seq: int) -> None:
        super().__init__(f"thread {thread_id}: seq {got_seq} arrived after {last_seq}; re-reading from {last_seq}")


class EndedError(Exception):
    """A followed stream ended without an error (a server going away): the tail reconnects."""
