"""Unit tests of the tail's resume logic against a scripted stub (no server)."""

import threading
import unittest

import grpc

from eventide import Cancellation
from eventide._gen.eventide.v1 import event_service_pb2, resources_pb2
from eventide.retry import Backoff
from eventide.tail import Tail


class Failure(grpc.RpcError):
    def __init__(self, code):
        self._code = code

    def code(self):
        return self._code


def event(seq):
    return event_service_pb2.TailEventsResponse(event=resources_pb2.Event(seq=seq, type="x"))


def heartbeat(scanned):
    return event_service_pb2.TailEventsResponse(heartbeat=event_service_pb2.Heartbeat(scanned_seq=scanned))


class Call:
    """A scripted server stream: its items, then an error (or a clean end)."""

    def __init__(self, items, error=None):
        self._items = iter(items)
        self._error = error
        self.cancelled = False

    def __iter__(self):
        return self

    def __next__(self):
        for item in self._items:
            return item
        if self._error is not None:
            raise self._error
        raise StopIteration

    def cancel(self):
        self.cancelled = True


class Blocking(Call):
    """A call that waits for its message until cancelled, then fails CANCELLED as grpc's does."""

    def __init__(self, items):
        super().__init__(items)
        self._release = threading.Event()

    def __next__(self):
        self._release.wait(5)
        raise Failure(grpc.StatusCode.CANCELLED)

    def cancel(self):
        self._release.set()


class Stub:
    def __init__(self, *calls):
        self._calls = list(calls)
        self.requests = []

    def TailEvents(self, request):
        self.requests.append(request)
        return self._calls.pop(0)


def fast():
    return Backoff(base=0.001, cap=0.002)


class TailTest(unittest.TestCase):
    def test_resumes_after_unavailable_from_the_last_seq_without_duplicates(self):
        stub = Stub(
            Call([event(1), event(2)], Failure(grpc.StatusCode.UNAVAILABLE)),
            Call([event(2), event(3)], Failure(grpc.StatusCode.DEADLINE_EXCEEDED)),
            Call([event(4)]),
        )
        tail = Tail(stub, "T", follow=False, backoff=fast())
        self.assertEqual([e.seq for e in tail], [1, 2, 3, 4])
        self.assertEqual([r.after_seq for r in stub.requests], [0, 2, 3])
        self.assertEqual(tail.reconnects, 2)

    def test_a_gap_is_read_again_from_the_last_seq(self):
        stub = Stub(Call([event(1), event(3)]), Call([event(2), event(3)]))
        tail = Tail(stub, "T", follow=False, backoff=fast())
        self.assertEqual([e.seq for e in tail], [1, 2, 3])
        self.assertEqual([r.after_seq for r in stub.requests], [0, 1])

    def test_a_filtered_tail_resumes_after_the_heartbeats_scanned_seq(self):
        stub = Stub(Call([event(5), heartbeat(9)], Failure(grpc.StatusCode.UNAVAILABLE)), Call([event(12)]))
        tail = Tail(stub, "T", types=("message.",), follow=False, backoff=fast())
        self.assertEqual([e.seq for e in tail], [5, 12])
        self.assertEqual([r.after_seq for r in stub.requests], [0, 9])
        self.assertEqual(list(stub.requests[1].types), ["message."])

    def test_terminal_codes_end_the_tail_with_the_error(self):
        for code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED,
                     grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE):
            stub = Stub(Call([event(1)], Failure(code)))
            tail = Tail(stub, "T", backoff=fast())
            self.assertEqual(next(tail).seq, 1)
            with self.assertRaises(grpc.RpcError) as raised:
                next(tail)
            self.assertEqual(raised.exception.code(), code)
            self.assertEqual(len(stub.requests), 1)

    def test_a_followed_stream_that_ends_is_reopened(self):
        stub = Stub(Call([event(1)]), Call([event(2)], Failure(grpc.StatusCode.NOT_FOUND)))
        tail = Tail(stub, "T", backoff=fast())
        self.assertEqual([next(tail).seq, next(tail).seq], [1, 2])

    def test_stop_ends_a_blocked_tail(self):
        stop = Cancellation()
        tail = Tail(Stub(Blocking([])), "T", stop=stop)
        threading.Timer(0.05, stop.cancel).start()
        self.assertEqual(list(tail), [])

    def test_a_threading_event_stops_it_too(self):
        stop = threading.Event()
        tail = Tail(Stub(Blocking([])), "T", stop=stop)
        threading.Timer(0.05, stop.set).start()
        self.assertEqual(list(tail), [])


class CancellationTest(unittest.TestCase):
    def test_children_follow_their_parent_once(self):
        parent = Cancellation()
        child = Cancellation(parent)
        reasons = []
        child.add_callback(reasons.append)
        parent.cancel("shutdown")
        parent.cancel("again")
        self.assertTrue(child.wait(0))
        self.assertEqual((child.reason, reasons), ("shutdown", ["shutdown"]))

    def test_a_late_callback_runs_at_once(self):
        c = Cancellation()
        c.cancel("done")
        seen = []
        c.add_callback(seen.append)
        self.assertEqual(seen, ["done"])


if __name__ == "__main__":
    unittest.main()
