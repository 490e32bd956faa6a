"""Each request connects a per-request handler to a blinker signal with weak=False."""

import blinker

EXPECTED = {
    "leak": True,
    "category": "listener",
    "site": "real/leak_blinker_strong_receivers.py#buffer",
    "root": "order_placed",
}

order_placed = blinker.Signal("order-placed")


class AuditHandler:
    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        self.buffer = bytearray(1500)  # leak-site: buffer

    def on_order(self, sender: object, **kw: object) -> None:
        self.buffer[:1] = b"x"


def step(i: int) -> None:
    handler = AuditHandler(i)
    order_placed.connect(handler.on_order, weak=False)
    order_placed.send(None)
