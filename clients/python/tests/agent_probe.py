"""An agent built with eventide.run_agent, for test/clients/python-client.test.ts.

A turn's input says what to do: {"tokens": [...], "token_delay_ms": n} streams the
tokens with delta() and returns (the runner completes the turn); {"wait_cancel": true}
waits for its cancellation signal. It prints JSON lines: {"started"}, {"done", "appends"},
{"cancelled", "reason"}. SIGTERM stops it (the runner drains, then returns)."""

import json
import signal
import sys
import time

import eventide


def out(**line) -> None:
    print(json.dumps(line), flush=True)


def handler(turn: eventide.Turn) -> None:
    out(started=turn.turn_id, attempt=turn.attempt)
    if turn.input.get("wait_cancel"):
        turn.cancelled.wait(60)
        out(cancelled=turn.turn_id, reason=turn.cancelled.reason)
        return
    delay = turn.input.get("token_delay_ms", 0) / 1000
    for token in turn.input["tokens"]:
        turn.delta(token)
        if delay:
            time.sleep(delay)
    turn.complete({"text": turn.text})
    out(done=turn.turn_id, appends=turn.appends)


def main() -> None:
    target, agent_id = sys.argv[1], sys.argv[2]
    stop = eventide.Cancellation()
    signal.signal(signal.SIGTERM, lambda *_: stop.cancel("SIGTERM"))
    with eventide.Client(target) as client:
        out(ready=agent_id)
        client.run_agent(agent_id, handler, max_in_flight=4, stop=stop, coalesce_ms=30)
    out(stopped=agent_id)


if __name__ == "__main__":
    main()
