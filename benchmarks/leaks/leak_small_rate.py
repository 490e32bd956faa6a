"""A small leak (one float per call) hidden under heavy temporary churn."""

import json

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_small_rate.py#latency",
    "root": "_latencies",
}

_latencies: list = []


def _measure(i: int) -> float:
    return i * 0.001 + 0.5  # leak-site: latency


def step(i: int) -> None:
    doc = {"id": i, "items": [{"k": k, "v": "x" * 40} for k in range(40)]}
    json.loads(json.dumps(doc))
    _latencies.append(_measure(i))
