"""A thin ctypes binding whose buffers are never freed."""

from __future__ import annotations

import ctypes
import ctypes.util

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.free.argtypes = [ctypes.c_void_p]
_libc.strdup.restype = ctypes.c_void_p
_libc.strdup.argtypes = [ctypes.c_char_p]


def _reserve(n: int) -> int:
    ptr = _libc.malloc(n)  # leak-site: native
    ctypes.memset(ptr, 0, n)
    return int(ptr)


def encode(rid: int) -> int:
    return _reserve(6000) and rid


def scratch(n: int) -> None:
    ptr = _libc.malloc(n)
    ctypes.memset(ptr, 1, n)
    _libc.free(ptr)


def dup(text: bytes) -> int:
    return _libc.strdup(text) or 0  # leak-site: strdup


def free(ptr: int) -> None:
    _libc.free(ptr)


def alloc(n: int) -> int:
    return _libc.malloc(n) or 0
