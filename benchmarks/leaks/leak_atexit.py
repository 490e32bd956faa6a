"""Every connection registers its close() with atexit; they are never released."""

import atexit

EXPECTED = {
    "leak": True,
    "category": "listener",
    "site": "leak_atexit.py#atexit",
    "root": "atexit",
}


class Connection:
    def __init__(self, i: int) -> None:
        self.buffer = bytearray(1200)  # leak-site: atexit
        self.i = i

    def close(self) -> None:
        self.buffer = bytearray()


def connect(i: int) -> Connection:
    conn = Connection(i)
    atexit.register(conn.close)
    return conn


def step(i: int) -> None:
    connect(i)
