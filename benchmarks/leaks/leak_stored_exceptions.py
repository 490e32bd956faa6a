"""Failed records keep their exceptions, so tracebacks keep frames and buffers."""

from leakapp.errors import ingest

EXPECTED = {
    "leak": True,
    "category": "stored_traceback",
    "site": "leakapp/errors.py#errors",
    "root": "_errors",
}


def step(i: int) -> None:
    ingest(b"\x00" + bytes(600))
