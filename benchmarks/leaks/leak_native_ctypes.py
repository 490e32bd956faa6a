"""A ctypes binding allocates a C buffer per call and never frees it."""

from leakapp import native

EXPECTED = {
    "leak": True,
    "category": "native",
    "site": "leakapp/native.py#native",
    "root": "C allocator",
}


def step(i: int) -> None:
    native.scratch(20000)  # a temporary C buffer, freed: not a leak
    native.encode(i)
