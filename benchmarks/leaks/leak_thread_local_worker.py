"""A worker thread's thread-local cache grows; the work is submitted from main."""

import threading
from concurrent.futures import ThreadPoolExecutor

EXPECTED = {
    "leak": True,
    "category": "thread_local",
    "site": "leak_thread_local_worker.py#worker",
    "root": "_state",
}

_state = threading.local()
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker")


def _work(i: int) -> int:
    seen = getattr(_state, "seen", None)
    if seen is None:
        seen = _state.seen = {}
    seen[i] = "w" * 800 + str(i)  # leak-site: worker
    return len(seen)


def step(i: int) -> None:
    _pool.submit(_work, i).result()


def teardown() -> None:
    _pool.shutdown(wait=True)
