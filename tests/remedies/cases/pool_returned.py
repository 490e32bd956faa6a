"""Look-alike: the same pool, used correctly (acquire returns on every exit).

Truth: not a pool leak; the doctor must not name pool "db".
"""

from memlens.remedies import MemoryPool


class Conn:
    def __init__(self) -> None:
        self.buf = bytearray(20_000)


pool = MemoryPool(name="db")
pool.register_factory("conn", Conn, limit=4)
results = []


def step(i):
    with pool.acquire("conn") as conn:
        conn.buf[0] = i % 256
    if len(results) < 10:
        results.append(i)
