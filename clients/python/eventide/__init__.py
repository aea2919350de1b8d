"""eventide's Python client: a resuming tail, retry-safe writes, and an agent runner."""

from ._gen.eventide.v1 import agent_service_pb2, event_service_pb2, resources_pb2, turn_service_pb2
from .agent import run_agent
from .cancellation import Cancellation
from .client import Client
from .tail import Tail
from .turn import Turn, TurnStopped
from .values import to_dict, to_struct

__all__ = [
    "Cancellation",
    "Client",
    "Tail",
    "Turn",
    "TurnStopped",
    "run_agent",
    "to_dict",
    "to_struct",
    "agent_service_pb2",
    "event_service_pb2",
    "resources_pb2",
    "turn_service_pb2",
]
