"""Logging and regular expressions: interpreter caches warm up, then stay."""

import logging
import re

EXPECTED = {"leak": False}

log = logging.getLogger("ok.caches")
log.addHandler(logging.NullHandler())
log.propagate = False
_PATTERNS = [rf"item-(\d+)-{k}" for k in range(40)]


def step(i: int) -> None:
    pattern = _PATTERNS[i % len(_PATTERNS)]
    m = re.match(pattern, f"item-{i}-{i % 40}")
    log.warning("matched %s", m.group(1) if m else None)
