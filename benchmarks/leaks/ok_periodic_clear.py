"""A batch buffer flushed (cleared) every 25 steps: a sawtooth, not a leak."""

EXPECTED = {"leak": False}

_batch: list[str] = []


def _flush() -> None:
    _batch.clear()


def step(i: int) -> None:
    _batch.append(f"event {i} " + "b" * 700)
    if len(_batch) >= 25:
        _flush()
