"""A 256-byte C buffer per call through ctypes, freed before returning."""

import ctypes
import ctypes.util

EXPECTED = {"leak": False}

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]


def step(i: int) -> None:
    ptr = libc.malloc(256)
    ctypes.memset(ptr, 1, 256)
    libc.free(ptr)
