"""Handlers subscribe and unsubscribe properly (look-alike of the event-bus leak)."""

from leakapp.events import EventBus

EXPECTED = {"leak": False}

_bus = EventBus()


class Handler:
    def __init__(self) -> None:
        self.buffer = bytearray(1500)

    def on_event(self, event: str) -> None:
        self.buffer[0] = 1


def step(i: int) -> None:
    h = Handler()
    _bus.subscribe(h.on_event)
    try:
        _bus.publish(f"event {i}")
    finally:
        _bus._subscribers.remove(h.on_event)
