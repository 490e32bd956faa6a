"""Pool leak, dropped: a handler borrows a session and forgets to give it back.

The session dies with the handler's frame, so memory does not grow (the pool
makes a new one each time), but every borrow is lost: a pool leak all the same.
Truth: a leak; the doctor must name pool "sessions", kind "session", borrowed at
the pool.get line below, and say the objects were dropped without being returned.
"""

from memlens.remedies import MemoryPool


class Session:
    def __init__(self) -> None:
        self.headers = {"user-agent": "case"}


pool = MemoryPool(name="sessions")
pool.register_factory("session", Session)


def step(i):
    session = pool.get("session")
    session.headers["n"] = str(i)  # used, never put back
