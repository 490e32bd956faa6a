"""An unbounded functools cache on text that never repeats."""

from __future__ import annotations

import functools


@functools.cache
def tokenize(text: str) -> tuple[str, ...]:
    return tuple(w + "#" for w in text.split())  # leak-site: lru


def count_tokens(prompt: str) -> int:
    return len(tokenize(prompt))
