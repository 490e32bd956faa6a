"""Interning a fixed vocabulary: the symbol table stops growing once all are seen."""

import sys

EXPECTED = {"leak": False}

_WORDS = [f"word{k}" for k in range(300)]
_ids: dict[str, int] = {}


def _intern(word: str) -> int:
    word = sys.intern(word)
    if word not in _ids:
        _ids[word] = len(_ids)
    return _ids[word]


def step(i: int) -> None:
    for k in range(5):
        _intern("".join(["word", str((i * 5 + k) % 300)]))
