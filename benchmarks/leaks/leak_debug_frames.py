"""A debug helper stores the caller's frame per request: frames keep all locals."""

import sys

EXPECTED = {
    "leak": True,
    "category": "stored_traceback",
    "site": "leak_debug_frames.py#frames",
    "root": "_debug_frames",
}

_debug_frames: dict = {}


def _remember_caller(rid: int) -> None:
    _debug_frames[rid] = sys._getframe(1)


def handle(rid: int) -> int:
    document = [f"line {k}" for k in range(40)]  # leak-site: frames
    _remember_caller(rid)
    return len(document)


def step(i: int) -> None:
    handle(i)
