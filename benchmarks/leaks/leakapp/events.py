"""An event bus whose subscribers are never removed."""

from __future__ import annotations

from collections.abc import Callable


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Callable[[str], None]] = []

    def subscribe(self, callback: Callable[[str], None]) -> None:
        self._subscribers.append(callback)

    def publish(self, event: str) -> None:
        for cb in self._subscribers[-3:]:
            cb(event)


bus = EventBus()


class RequestHandler:
    def __init__(self, rid: int) -> None:
        self.rid = rid
        self.buffer = bytearray(1500)  # leak-site: events
        bus.subscribe(self.on_event)

    def on_event(self, event: str) -> None:
        self.buffer[0] = len(event) % 256


def handle(rid: int) -> None:
    RequestHandler(rid)
    bus.publish(f"handled {rid}")
