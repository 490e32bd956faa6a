"""Background asyncio tasks are kept in a set and never discarded."""

import asyncio

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_task_set.py#task",
    "root": "_background",
}

_background: set = set()
_loop = asyncio.new_event_loop()


async def _send_audit(i: int) -> str:
    payload = f"audit {i} " + "a" * 800  # leak-site: task
    await asyncio.sleep(0)
    return payload


async def _handle(i: int) -> None:
    task = asyncio.ensure_future(_send_audit(i))
    _background.add(task)  # no task.add_done_callback(_background.discard)
    await task


def step(i: int) -> None:
    _loop.run_until_complete(_handle(i))


def teardown() -> None:
    _loop.close()
