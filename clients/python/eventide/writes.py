"""Unary calls retried the safe way: the request (with its event ids or
idempotency key, filled in once) is sent again unchanged, so a retry after
UNAVAILABLE or a timeout returns the original result instead of writing twice."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterable, Mapping, Optional, TypeVar, Union

import grpc

from ._gen.eventide.v1 import resources_pb2
from .cancellation import Cancellation
from .retry import RETRYABLE_WRITE_CODES, Backoff, status_code
from .values import to_struct

Response = TypeVar("Response")

EventLike = Union[resources_pb2.EventInput, Mapping[str, Any]]


def new_id() -> str:
    """A client id (event id batch prefix, idempotency key): 32 hex characters."""
    return uuid.uuid4().hex


def event_inputs(events: Iterable[EventLike], id_prefix: str) -> list:
    """EventInputs from messages or dicts ({"type", "payload", "metadata", "level", "event_id"}); ids filled in as `<prefix>-<n>`."""
    inputs = []
    for n, event in enumerate(events):
        if isinstance(event, resources_pb2.EventInput):
            message = resources_pb2.EventInput()
            message.CopyFrom(event)
        else:
            message = resources_pb2.EventInput(
                event_id=event.get("event_id", ""),
                type=event["type"],
                payload=to_struct(event.get("payload")),
                metadata=event.get("metadata", {}),
                schema_version=event.get("schema_version", 0),
                level=event.get("level", ""),
            )
        if not message.event_id:
            message.event_id = f"{id_prefix}-{n}"
        inputs.append(message)
    return inputs


def call_with_retry(
    method: Callable[..., Response],
    request: Any,
    timeout: float,
    retry_for: float,
    stop: Optional[Cancellation] = None,
) -> Response:
    """Calls `method(request)`; on a retryable failure, again with the same request until `retry_for` seconds passed."""
    deadline = time.monotonic() + retry_for
    backoff = Backoff(base=0.1, cap=2.0)
    while True:
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as err:
            delay = backoff.next_delay()
            if status_code(err) not in RETRYABLE_WRITE_CODES or time.monotonic() + delay > deadline:
                raise
            if stop is not None and stop.wait(delay):
                raise
            if stop is None:
                time.sleep(delay)
