"""C buffers from a pool that grows to 16 and is then reused; temporaries freed."""

from leakapp import native

EXPECTED = {"leak": False}

_pool: list[int] = []
_free: list[int] = []


def _acquire() -> int:
    if _free:
        return _free.pop()
    if len(_pool) < 16:
        ptr = native.alloc(8192)
        _pool.append(ptr)
        return ptr
    return _pool[0]


def step(i: int) -> None:
    ptr = _acquire()
    native.scratch(30000)
    _free.append(ptr)
