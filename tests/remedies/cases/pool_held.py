"""Pool leak, held: every request borrows a connection and parks it in a list.

Truth: a leak; the doctor must name pool "db", kind "conn", borrowed at the
pool.get line below (line 21).
"""

from memlens.remedies import MemoryPool


class Conn:
    def __init__(self) -> None:
        self.buf = bytearray(20_000)


pool = MemoryPool(name="db")
pool.register_factory("conn", Conn)
in_flight = []


def step(i):
    conn = pool.get("conn")
    in_flight.append(conn)  # never returned
