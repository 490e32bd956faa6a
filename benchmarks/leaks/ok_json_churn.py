"""Heavy temporary allocations (JSON round trips), nothing retained."""

import json

EXPECTED = {"leak": False}


def step(i: int) -> None:
    doc = {"id": i, "items": [{"k": k, "v": "x" * 50} for k in range(50)]}
    json.loads(json.dumps(doc))
