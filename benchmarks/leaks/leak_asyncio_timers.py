"""Each session schedules an expiry an hour out on a long-lived loop: the timer
handles (and the sessions their callbacks are bound to) pile up in the loop."""

import asyncio

EXPECTED = {
    "leak": True,
    "category": "listener",
    "site": "leak_asyncio_timers.py#timers",
    "root": "_loop",
}

_loop = asyncio.new_event_loop()


class Session:
    def __init__(self, i: int) -> None:
        self.data = bytearray(900) + bytes(str(i), "ascii")  # leak-site: timers

    def expire(self) -> None:
        self.data = bytearray()


async def _open(i: int) -> None:
    session = Session(i)
    asyncio.get_running_loop().call_later(3600, session.expire)


def step(i: int) -> None:
    _loop.run_until_complete(_open(i))


def teardown() -> None:
    _loop.close()
