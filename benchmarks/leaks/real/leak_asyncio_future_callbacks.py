"""Connections register close() on a shutdown future that only completes at exit."""

import asyncio

EXPECTED = {
    "leak": True,
    "category": "listener",
    "site": "real/leak_asyncio_future_callbacks.py#buffer",
    "root": "shutdown",
}

loop = asyncio.new_event_loop()
shutdown: asyncio.Future[None] = loop.create_future()


class Connection:
    def __init__(self, i: int) -> None:
        self.i = i
        self.buffer = bytearray(900)  # leak-site: buffer

    def close(self, _fut: object) -> None:
        self.buffer = bytearray()


def step(i: int) -> None:
    conn = Connection(i)
    shutdown.add_done_callback(conn.close)


def teardown() -> None:
    shutdown.cancel()
    loop.close()
