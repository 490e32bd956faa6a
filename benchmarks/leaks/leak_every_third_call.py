"""Only failed attempts (every third call) are parked for a retry that never comes."""

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_every_third_call.py#retry",
    "root": "_retry_queue",
}

_retry_queue: list = []


def _attempt(i: int) -> bool:
    return i % 3 != 0


def _park(i: int) -> None:
    _retry_queue.append({"id": i, "body": f"job {i} " + "r" * 1500})  # leak-site: retry


def step(i: int) -> None:
    if not _attempt(i):
        _park(i)
