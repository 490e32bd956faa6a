"""A small native leak (a 700-byte C string per call) under heavy Python churn."""

import json

from leakapp import native

EXPECTED = {
    "leak": True,
    "category": "native",
    "site": "leakapp/native.py#strdup",
    "root": "C allocator",
}


def step(i: int) -> None:
    doc = {"id": i, "rows": [{"k": k, "v": "v" * 30} for k in range(60)]}
    json.loads(json.dumps(doc))
    native.dup(b"%d:" % i + b"n" * 700)
