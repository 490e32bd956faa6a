"""A consumer thread keeps every message in a local list of its running frame."""

import queue
import threading

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_live_frame.py#frame",
    "root": "consume",
}

_inbox: queue.Queue = queue.Queue()


def consume() -> None:
    history = []
    while True:
        msg = _inbox.get()
        if msg is None:
            _inbox.task_done()
            return
        history.append(msg)
        _inbox.task_done()


_worker = threading.Thread(target=consume, name="consumer", daemon=True)


def setup() -> None:
    _worker.start()


def teardown() -> None:
    _inbox.put(None)
    _worker.join(timeout=5)


def step(i: int) -> None:
    _inbox.put(f"message {i} " + "m" * 700)  # leak-site: frame
    _inbox.join()
