"""Parsed JSON documents are kept in a list; the allocation is inside json."""

import json

from leakapp.parsing import inspect_payload

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leakapp/parsing.py#json",
    "root": "_inspected",
}


def step(i: int) -> None:
    raw = json.dumps({"id": i, "tags": [f"t{k}-{i}" for k in range(12)], "body": "z" * 300})
    inspect_payload(raw)
