"""An eventide agent in Python: it streams "You said: <text>" back, word by word.

Run it (the server on 127.0.0.1:8080, without its own reference agent):
  EVENTIDE_ROLES=server,persister,archiver,dispatcher npm start
  PYTHONPATH=clients/python /usr/bin/python3 clients/python/examples/echo_agent.py
"""

import os
import time

import eventide


def echo(turn: eventide.Turn) -> None:
    words = f"You said: {turn.input.get('text', '')}".split(" ")
    for i, word in enumerate(words):
        if turn.cancelled.is_set():
            return  # cancelled, lease lost or shutting down: stop at once
        turn.delta(word if i == 0 else " " + word)
        time.sleep(0.1)  # a model producing tokens
    turn.complete({"text": turn.text})


client = eventide.Client(os.environ.get("EVENTIDE_URL", "http://127.0.0.1:8080"), api_key=os.environ.get("EVENTIDE_API_KEY"))
print("echo agent running; submit a turn in the console", flush=True)
eventide.run_agent(client, "echo-python", echo, max_in_flight=8)
