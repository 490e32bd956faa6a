"""Look-alike: the first call borrows a few connections and keeps them for good.

Every later call only reads them. Truth: not a pool leak (nothing piles up with
the calls); the doctor must not name pool "db".
"""

from memlens.remedies import MemoryPool


class Conn:
    def __init__(self) -> None:
        self.buf = bytearray(20_000)


pool = MemoryPool(name="db")
pool.register_factory("conn", Conn)
kept = []


def step(i):
    if not kept:
        kept.extend(pool.get("conn") for _ in range(30))
    return len(kept[i % 30].buf)
