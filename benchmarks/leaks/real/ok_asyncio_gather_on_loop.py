"""Tasks gathered per request on a long-lived asyncio loop; all finish and are dropped."""

import asyncio

EXPECTED = {"leak": False}

loop = asyncio.new_event_loop()


async def fetch(k: int) -> bytes:
    await asyncio.sleep(0)
    return b"." * (100 + k)


async def handle(i: int) -> int:
    parts = await asyncio.gather(*(fetch(k) for k in range(5)))
    return sum(map(len, parts))


def step(i: int) -> None:
    loop.run_until_complete(handle(i))


def teardown() -> None:
    loop.close()
