"""Unit tests of the turn writer: coalescing, ids fixed per attempt, retries, lease loss."""

import threading
import unittest

import grpc

from eventide import Cancellation, TurnStopped
from eventide._gen.eventide.v1 import agent_service_pb2, event_service_pb2, resources_pb2
from eventide.turn import Turn


class Failure(grpc.RpcError):
    def __init__(self, code):
        self._code = code

    def code(self):
        return self._code


class Events:
    def __init__(self, failures=()):
        self.requests = []
        self.failures = list(failures)
        self.sent = threading.Event()

    def AppendEvents(self, request, timeout=None):
        self.requests.append(request)
        if self.failures:
            raise Failure(self.failures.pop(0))
        self.sent.set()
        return event_service_pb2.AppendEventsResponse()


class Agents:
    def __init__(self):
        self.completed = []

    def CompleteTurn(self, request, timeout=None):
        self.completed.append(request)
        return agent_service_pb2.CompleteTurnResponse()


class FakeClient:
    timeout = 1.0
    retry_for = 5.0

    def __init__(self, failures=()):
        self.events = Events(failures)
        self.agents = Agents()


def assignment(attempt=2):
    return agent_service_pb2.TurnAssignment(
        turn=resources_pb2.Turn(turn_id="TURN", thread_id="THREAD"), lease_id="L", attempt=attempt
    )


def deltas(request):
    return [e.payload.fields["delta"].string_value for e in request.events if e.type == "message.delta"]


class TurnTest(unittest.TestCase):
    def test_deltas_within_the_window_go_in_one_append(self):
        client = FakeClient()
        turn = Turn(client, assignment(), Cancellation(), coalesce_ms=50)
        for token in ["a", "b", "c"]:
            turn.delta(token)
        self.assertTrue(client.events.sent.wait(2))
        self.assertEqual(len(client.events.requests), 1)
        request = client.events.requests[0]
        self.assertEqual(deltas(request), ["abc"])
        self.assertEqual([e.event_id for e in request.events], ["TURN-2-0"])
        self.assertEqual(request.lease_id, "L")

    def test_complete_sends_what_is_buffered_then_message_completed_then_completes(self):
        client = FakeClient()
        turn = Turn(client, assignment(), Cancellation(), coalesce_ms=10_000)
        turn.delta("hi ")
        turn.event("tool.called", {"name": "x"})
        turn.delta("there")
        turn.complete()
        types = [[e.type for e in r.events] for r in client.events.requests]
        self.assertEqual(types, [["message.delta", "tool.called"], ["message.delta", "message.completed"]])
        ids = [e.event_id for r in client.events.requests for e in r.events]
        self.assertEqual(ids, ["TURN-2-0", "TURN-2-1", "TURN-2-2", "TURN-2-3"])
        self.assertEqual(client.agents.completed[0].output.fields["text"].string_value, "hi there")
        with self.assertRaises(TurnStopped):
            turn.delta("late")

    def test_a_retried_append_sends_the_same_ids(self):
        client = FakeClient(failures=[grpc.StatusCode.UNAVAILABLE])
        turn = Turn(client, assignment(), Cancellation(), coalesce_ms=0)
        turn.delta("x")
        first, second = client.events.requests
        self.assertEqual(first, second)

    def test_a_refused_lease_fires_the_signal_and_stops_the_handler(self):
        client = FakeClient(failures=[grpc.StatusCode.FAILED_PRECONDITION])
        cancelled = Cancellation()
        turn = Turn(client, assignment(), cancelled, coalesce_ms=0)
        with self.assertRaises(TurnStopped):
            turn.delta("x")
        self.assertEqual(cancelled.reason, "lease lost")


if __name__ == "__main__":
    unittest.main()
