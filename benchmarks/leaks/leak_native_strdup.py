"""strdup'd C strings are handed out and never freed."""

from leakapp import native

EXPECTED = {
    "leak": True,
    "category": "native",
    "site": "leakapp/native.py#strdup",
    "root": "C allocator",
}


def step(i: int) -> None:
    native.dup(b"%d:" % i + b"s" * 3000)
