"""Tails a thread with eventide.Client.tail and prints what it sees as JSON lines,
for test/clients/python-client.test.ts: {"seq", "type"} per event, {"caught_up"},
{"reconnect"}; exits 0 once it delivered `until_seq`, 1 with {"error"} if the tail ended.
EVENTIDE_API_KEY, when set, is its key."""

import json
import os
import sys

import eventide


def main() -> int:
    target, thread_id, until_seq = sys.argv[1], sys.argv[2], int(sys.argv[3])
    out = lambda **line: print(json.dumps(line), flush=True)  # noqa: E731
    with eventide.Client(target, api_key=os.environ.get("EVENTIDE_API_KEY")) as client:
        tail = client.tail(
            thread_id,
            on_caught_up=lambda last_seq: out(caught_up=last_seq),
            on_reconnect=lambda err, delay: out(reconnect=str(err)[:200], delay=delay),
        )
        try:
            for event in tail:
                out(seq=event.seq, type=event.type)
                if event.seq >= until_seq:
                    tail.close()
                    return 0
        except Exception as err:  # the test shows it
            code = getattr(err, "code", None)
            out(error=repr(err), code=code().name if callable(code) else None)
            return 1
    out(error="the tail ended early")
    return 1


if __name__ == "__main__":
    sys.exit(main())
