"""Strings interned per request and dropped: interned strings are mortal in CPython."""

import sys

EXPECTED = {"leak": False}


def step(i: int) -> None:
    keys = [sys.intern(f"session:{i}:field:{k}") for k in range(20)]
    {k: None for k in keys}
