"""run_agent: the AgentService.ReceiveTurns loop.

It keeps the feed open (reconnecting with backoff and jitter), runs each
assigned turn's handler in a thread of its own, renews each lease at a third of
its TTL, and fires the turn's `cancelled` signal when the turn is cancelled,
when its lease is lost (RenewLease or AppendEvents refused) and on shutdown. A handler that returns completes the turn (with what it
returned, if a dict); one that raises fails it as retryable.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Optional

import grpc

from ._gen.eventide.v1 import agent_service_pb2
from .cancellation import Cancellation, Stop, as_cancellation
from .retry import Backoff, status_code
from .turn import Turn, TurnStopped

log = logging.getLogger("eventide.agent")

# The feed cannot work with these: give up instead of reconnecting.
_FATAL_FEED_CODES = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


def run_agent(
    client: Any,
    agent_id: str,
    handler: Callable[[Turn], Any],
    max_in_flight: int = 1,
    stop: Stop = None,
    coalesce_ms: float = 20,
    drain_timeout: float = 10.0,
    backoff: Optional[Backoff] = None,
) -> None:
    """Runs turns for `agent_id` until `stop` fires (a Cancellation or threading.Event); blocks until then.

    On stop, running handlers see `turn.cancelled` fire ("shutdown") and get up to
    `drain_timeout` seconds to return before the feed closes (which requeues what is left).
    """
    AgentRunner(client, agent_id, handler, max_in_flight, as_cancellation(stop), coalesce_ms, drain_timeout, backoff or Backoff()).run()


class AgentRunner:
    def __init__(
        self,
        client: Any,
        agent_id: str,
        handler: Callable[[Turn], Any],
        max_in_flight: int,
        shutdown: Cancellation,
        coalesce_ms: float,
        drain_timeout: float,
        backoff: Backoff,
    ) -> None:
        self._client = client
        self._agent_id = agent_id
        self._handler = handler
        self._max_in_flight = max_in_flight
        self._shutdown = shutdown
        self._coalesce_ms = coalesce_ms
        self._drain_timeout = drain_timeout
        self._backoff = backoff
        self._lock = threading.Lock()
        # turn id → (its cancellation, its thread)
        self._running: Dict[str, "tuple[Cancellation, threading.Thread]"] = {}
        self._feed: Optional[grpc.Call] = None

    def run(self) -> None:
        remove = self._shutdown.add_callback(self._on_shutdown)
        try:
            while not self._shutdown.cancelled:
                failure = self._receive()
                # Running turns go on: their leases say whether they are still ours (a server that
                # drained requeued them, and their next RenewLease or AppendEvents says so; one that
                # crashed left them leased, and they finish once it is back).
                if self._shutdown.cancelled:
                    break
                delay = self._backoff.next_delay()
                log.warning("agent %s lost its feed (%s); reconnecting in %.2fs", self._agent_id, failure, delay)
                self._shutdown.wait(delay)
        except BaseException:
            self._shutdown.cancel("interrupted")  # e.g. Ctrl-C: handlers stop before the drain
            raise
        finally:
            remove()
            self._join_all(self._drain_timeout)

    def _receive(self) -> Optional[BaseException]:
        request = agent_service_pb2.ReceiveTurnsRequest(agent_id=self._agent_id, max_in_flight=self._max_in_flight)
        feed = self._client.agents.ReceiveTurns(request)
        with self._lock:
            self._feed = feed
        if self._shutdown.cancelled:
            feed.cancel()
        try:
            for item in feed:
                self._backoff.reset()
                kind = item.WhichOneof("item")
                if kind == "assignment" and not self._shutdown.cancelled:
                    self._start(item.assignment)
                elif kind == "cancellation":
                    self._cancel(item.cancellation.turn_id, "cancelled")
            return None
        except grpc.RpcError as err:
            if self._shutdown.cancelled:
                return None
            if status_code(err) in _FATAL_FEED_CODES:
                raise
            return err
        finally:
            with self._lock:
                self._feed = None
            feed.cancel()

    def _on_shutdown(self, _reason: str) -> None:
        # Handlers see the shutdown at once; the feed stays open while they finish (closing it requeues their turns).
        self._cancel_all("shutdown")

        def drain_then_close() -> None:
            self._join_all(self._drain_timeout)
            with self._lock:
                feed = self._feed
            if feed is not None:
                feed.cancel()

        threading.Thread(target=drain_then_close, name="eventide-agent-drain", daemon=True).start()

    def _start(self, assignment: agent_service_pb2.TurnAssignment) -> None:
        turn_id = assignment.turn.turn_id
        cancelled = Cancellation()
        thread = threading.Thread(target=self._run_turn, args=(assignment, cancelled), name=f"eventide-turn-{turn_id}", daemon=True)
        with self._lock:
            self._running[turn_id] = (cancelled, thread)
        thread.start()

    def _cancel(self, turn_id: str, reason: str) -> None:
        with self._lock:
            entry = self._running.get(turn_id)
        if entry is not None:
            entry[0].cancel(reason)

    def _cancel_all(self, reason: str) -> None:
        with self._lock:
            entries = list(self._running.values())
        for cancelled, _ in entries:
            cancelled.cancel(reason)

    def _join_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = [thread for _, thread in self._running.values()]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run_turn(self, assignment: agent_service_pb2.TurnAssignment, cancelled: Cancellation) -> None:
        turn = Turn(self._client, assignment, cancelled, self._coalesce_ms)
        done = threading.Event()
        renewer = threading.Thread(target=self._keep_lease, args=(assignment, cancelled, done), daemon=True)
        renewer.start()
        try:
            result = self._handler(turn)
            if not turn.ended and not cancelled.cancelled:
                turn.complete(result if isinstance(result, dict) else None)
        except TurnStopped:
            pass
        except Exception as err:  # the handler's own failure: another attempt may succeed
            if turn.ended or cancelled.cancelled:
                log.info("turn %s ended with %r after it stopped", turn.turn_id, err)
            else:
                log.warning("turn %s failed: %r; asking for a retry", turn.turn_id, err)
                try:
                    turn.fail(repr(err), retryable=True)
                except Exception as fail_err:
                    log.warning("turn %s: FailTurn failed too: %r", turn.turn_id, fail_err)
        finally:
            turn.close()
            done.set()
            renewer.join()
            with self._lock:
                self._running.pop(turn.turn_id, None)

    def _keep_lease(self, assignment: agent_service_pb2.TurnAssignment, cancelled: Cancellation, done: threading.Event) -> None:
        """Renews at a third of the lease's remaining life until the turn ends; a refused renewal stops the turn."""
        expires_at = _seconds(assignment.lease_expires_at) if assignment.HasField("lease_expires_at") else time.time() + 30
        while True:
            interval = max(0.1, (expires_at - time.time()) / 3)
            if done.wait(interval) or cancelled.cancelled:
                return
            request = agent_service_pb2.RenewLeaseRequest(lease_id=assignment.lease_id)
            try:
                response = self._client.agents.RenewLease(request, timeout=max(1.0, interval))
                expires_at = _seconds(response.lease_expires_at)
            except grpc.RpcError as err:
                code = status_code(err)
                if code == grpc.StatusCode.CANCELLED:
                    cancelled.cancel("cancelled")
                    return
                if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                    cancelled.cancel("lease lost")
                    return
                # Unreachable for now: try again sooner, while the lease still lives.


def _seconds(timestamp: Any) -> float:
    return timestamp.seconds + timestamp.nanos / 1e9
