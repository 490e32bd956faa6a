"""A blinker receiver connected strongly for one request and disconnected after it."""

import blinker

EXPECTED = {"leak": False}

order_placed = blinker.Signal("order-placed")


class AuditHandler:
    def __init__(self, request_id: int) -> None:
        self.buffer = bytearray(1500)

    def on_order(self, sender: object, **kw: object) -> None:
        self.buffer[:1] = b"x"


def step(i: int) -> None:
    handler = AuditHandler(i)
    order_placed.connect(handler.on_order, weak=False)
    order_placed.send(None)
    order_placed.disconnect(handler.on_order)
