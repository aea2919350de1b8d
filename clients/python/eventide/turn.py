"""What a turn handler holds: the turn, its cancellation signal, and a writer.

`delta(text)` buffers tokens and sends them `coalesce_ms` later as one
`message.delta` event in one AppendEvents (tokens arriving while an append is in
flight join the next one), so a fast model does not cost one RPC per token.
Event ids are `<turn>-<attempt>-<n>`: fixed per attempt, so a retried append is
recognised by the server and never doubled.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Mapping, Optional

import grpc

from ._gen.eventide.v1 import agent_service_pb2, event_service_pb2, resources_pb2
from .cancellation import Cancellation
from .retry import status_code
from .values import to_dict, to_struct
from .writes import call_with_retry


class TurnStopped(Exception):
    """The turn is no longer this agent's (cancelled, lease lost, shutdown): stop working on it."""


# What the server answers when the lease no longer holds.
_LEASE_GONE = {grpc.StatusCode.CANCELLED: "cancelled", grpc.StatusCode.FAILED_PRECONDITION: "lease lost"}


class Turn:
    def __init__(self, client: Any, assignment: agent_service_pb2.TurnAssignment, cancelled: Cancellation, coalesce_ms: float) -> None:
        self._client = client
        self.assignment = assignment
        self.turn: resources_pb2.Turn = assignment.turn
        self.turn_id: str = assignment.turn.turn_id
        self.thread_id: str = assignment.turn.thread_id
        self.lease_id: str = assignment.lease_id
        self.attempt: int = assignment.attempt
        self.input: Dict[str, Any] = to_dict(assignment.turn.input)
        self.cancelled = cancelled
        """Fires when the turn is cancelled, its lease is lost, or the agent shuts down (see `.reason`)."""
        self.message_id = f"msg-{self.turn_id}"
        self.text = ""
        """Every delta so far, joined."""
        self.ended = False
        self._coalesce_s = max(0.0, coalesce_ms / 1000)
        self._pending: List[str] = []
        self._timer: Optional[threading.Timer] = None
        self._buffer_lock = threading.Lock()
        self._append_lock = threading.Lock()
        self._next_event = 0
        self._error: Optional[BaseException] = None
        self.appends = 0
        """AppendEvents calls made for this turn."""

    def delta(self, text: str) -> None:
        """Streams a piece of the reply (coalesced with its neighbours into one event)."""
        self._check()
        if not text:
            return
        with self._buffer_lock:
            self._pending.append(text)
            self.text += text
            if self._coalesce_s == 0:
                flush_now = True
            else:
                flush_now = False
                if self._timer is None:
                    self._timer = threading.Timer(self._coalesce_s, self._flush_in_background)
                    self._timer.daemon = True
                    self._timer.start()
        if flush_now:
            self.flush()

    def event(self, type: str, payload: Optional[Mapping[str, Any]] = None, **fields: Any) -> None:
        """Appends an event (after the deltas before it, in the same AppendEvents)."""
        self._check()
        self.flush(extra=[{"type": type, "payload": payload, **fields}])

    def flush(self, extra: Optional[List[Mapping[str, Any]]] = None) -> None:
        """Sends the buffered deltas (and `extra` events) now."""
        with self._append_lock:
            with self._buffer_lock:
                text = "".join(self._pending)
                self._pending.clear()
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            events = []
            if text:
                events.append({"type": "message.delta", "payload": {"message_id": self.message_id, "delta": text}})
            events.extend(extra or [])
            if not events:
                return
            request = event_service_pb2.AppendEventsRequest(
                thread_id=self.thread_id, turn_id=self.turn_id, lease_id=self.lease_id
            )
            for event in events:
                request.events.add(
                    event_id=f"{self.turn_id}-{self.attempt}-{self._next_event}",
                    type=event["type"],
                    payload=to_struct(event.get("payload")),
                    metadata=event.get("metadata") or {},
                    level=event.get("level") or "",
                )
                self._next_event += 1
            self._send(self._client.events.AppendEvents, request)
            self.appends += 1

    def complete(self, output: Optional[Mapping[str, Any]] = None) -> None:
        """Ends the turn: `message.completed` (if deltas were streamed), then CompleteTurn with `output` (default {"text": …})."""
        self._check()
        self.flush(extra=[{"type": "message.completed", "payload": {"message_id": self.message_id, "text": self.text}}] if self.text else None)
        if output is None:
            output = {"text": self.text}
        request = agent_service_pb2.CompleteTurnRequest(turn_id=self.turn_id, lease_id=self.lease_id, output=to_struct(output))
        self._send(self._client.agents.CompleteTurn, request)
        self.ended = True

    def fail(self, error: str, retryable: bool = False) -> None:
        """Ends the turn as failed; `retryable` asks for another attempt (with backoff, up to the server's max)."""
        self._check()
        self.flush()
        request = agent_service_pb2.FailTurnRequest(turn_id=self.turn_id, lease_id=self.lease_id, error=error[:4096], retryable=retryable)
        self._send(self._client.agents.FailTurn, request)
        self.ended = True

    def close(self) -> None:
        """Drops what was not sent (the turn ended or is no longer ours)."""
        with self._buffer_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._pending.clear()

    def _send(self, method: Any, request: Any) -> Any:
        try:
            return call_with_retry(method, request, self._client.timeout, self._client.retry_for, self.cancelled)
        except grpc.RpcError as err:
            reason = _LEASE_GONE.get(status_code(err))
            if reason is not None:
                self.cancelled.cancel(reason)
                raise TurnStopped(f"turn {self.turn_id}: {reason}") from err
            raise

    def _flush_in_background(self) -> None:
        try:
            self.flush()
        except BaseException as err:  # surfaced on the handler's next call
            self._error = err

    def _check(self) -> None:
        if self._error is not None:
            raise self._error
        if self.ended:
            raise TurnStopped(f"turn {self.turn_id} has ended")
        if self.cancelled.cancelled:
            raise TurnStopped(f"turn {self.turn_id}: {self.cancelled.reason}")
