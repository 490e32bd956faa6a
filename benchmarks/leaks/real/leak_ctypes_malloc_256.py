"""A C buffer of 256 bytes allocated with ctypes per call and never freed."""

import ctypes
import ctypes.util

EXPECTED = {
    "leak": True,
    "category": "native",
    "site": "real/leak_ctypes_malloc_256.py#malloc",
    "root": "C allocator",
}

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]


def scratch_buffer() -> int:
    ptr = libc.malloc(256)  # leak-site: malloc
    ctypes.memset(ptr, 0, 256)
    return int(ptr)


def step(i: int) -> None:
    scratch_buffer()
    _ = [str(k) for k in range(30)]
