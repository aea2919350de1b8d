"""The eventide client: one channel, the services' stubs, and the calls users make most."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Tuple

import grpc

from ._gen.eventide.v1 import (
    agent_service_pb2_grpc,
    archive_service_pb2_grpc,
    event_service_pb2,
    event_service_pb2_grpc,
    turn_service_pb2,
    turn_service_pb2_grpc,
)
from .agent import run_agent
from .cancellation import Stop
from .connection import open_channel
from .tail import Tail
from .values import to_struct
from .writes import EventLike, call_with_retry, event_inputs, new_id


class Client:
    """Connects to `target` ("127.0.0.1:8080", or the URL `npm start` prints).

    api_key: sent as `Authorization: Bearer <key>` when the server has API keys.
    tls: True for TLS (implied by an https:// target); root_certificates: PEM to trust
    (e.g. a self-signed TLS_CERT); timeout: seconds per unary call; retry_for: how long
    writes are retried on UNAVAILABLE / DEADLINE_EXCEEDED (with the same ids).
    """

    def __init__(
        self,
        target: str = "127.0.0.1:8080",
        api_key: Optional[str] = None,
        tls: Optional[bool] = None,
        root_certificates: Optional[bytes] = None,
        timeout: float = 10.0,
        retry_for: float = 30.0,
        channel_options: Sequence[Tuple[str, object]] = (),
    ) -> None:
        self.channel = open_channel(target, api_key, tls, root_certificates, channel_options)
        self.timeout = timeout
        self.retry_for = retry_for
        self.events = event_service_pb2_grpc.EventServiceStub(self.channel)
        self.turns = turn_service_pb2_grpc.TurnServiceStub(self.channel)
        self.agents = agent_service_pb2_grpc.AgentServiceStub(self.channel)
        self.archives = archive_service_pb2_grpc.ArchiveServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tail(
        self,
        thread_id: str,
        after_seq: int = 0,
        types: Sequence[str] = (),
        turn_id: Optional[str] = None,
        follow: bool = True,
        batch: int = 0,
        stop: Stop = None,
        **callbacks: Any,
    ) -> Tail:
        """A thread's events with seq > after_seq, resuming by itself (see eventide.tail.Tail).

        callbacks: on_caught_up(last_seq), on_heartbeat(scanned_seq), on_reconnect(error, delay).
        """
        return Tail(self.events, thread_id, after_seq, types, turn_id, follow, batch, stop, **callbacks)

    def append(
        self,
        thread_id: str,
        events: Iterable[EventLike],
        expected_last_seq: Optional[int] = None,
        turn_id: str = "",
        lease_id: str = "",
    ) -> event_service_pb2.AppendEventsResponse:
        """Appends events atomically. Events without an event_id get one, once: a retry returns the original seqs."""
        request = event_service_pb2.AppendEventsRequest(
            thread_id=thread_id, turn_id=turn_id, lease_id=lease_id, events=event_inputs(events, new_id())
        )
        if expected_last_seq is not None:
            request.expected_last_seq = expected_last_seq
        return call_with_retry(self.events.AppendEvents, request, self.timeout, self.retry_for)

    def submit_turn(
        self,
        input: Optional[Mapping[str, Any]] = None,
        thread_id: str = "",
        idempotency_key: Optional[str] = None,
        metadata: Optional[Mapping[str, str]] = None,
        multitask_strategy: int = 0,
    ) -> turn_service_pb2.SubmitTurnResponse:
        """Submits a turn (an empty thread_id creates the thread) under an idempotency key (generated when not given)."""
        request = turn_service_pb2.SubmitTurnRequest(
            thread_id=thread_id,
            input=to_struct(input),
            idempotency_key=idempotency_key or new_id(),
            metadata=metadata or {},
            multitask_strategy=multitask_strategy,
        )
        return call_with_retry(self.turns.SubmitTurn, request, self.timeout, self.retry_for)

    def create_thread(self, metadata: Optional[Mapping[str, str]] = None) -> turn_service_pb2.CreateThreadResponse:
        return self.turns.CreateThread(turn_service_pb2.CreateThreadRequest(metadata=metadata or {}), timeout=self.timeout)

    def get_turn(self, turn_id: str) -> turn_service_pb2.GetTurnResponse:
        return self.turns.GetTurn(turn_service_pb2.GetTurnRequest(turn_id=turn_id), timeout=self.timeout)

    def cancel_turn(self, turn_id: str, reason: str = "") -> turn_service_pb2.CancelTurnResponse:
        return self.turns.CancelTurn(turn_service_pb2.CancelTurnRequest(turn_id=turn_id, reason=reason), timeout=self.timeout)

    def run_agent(self, agent_id: str, handler: Callable[..., Any], max_in_flight: int = 1, stop: Stop = None, **options: Any) -> None:
        """Runs `handler(turn)` for each turn assigned to `agent_id` until `stop` (see eventide.agent.run_agent)."""
        run_agent(self, agent_id, handler, max_in_flight=max_in_flight, stop=stop, **options)
