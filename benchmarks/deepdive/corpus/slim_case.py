"""A heap with four known reductions; ``SLIM_VARIANT`` applies one of them (A/B).

Baseline (no variant):
- ``points``: 50,000 ``Point`` instances with three attributes and no ``__slots__``;
- ``events``: 100,000 status strings built at run time from 5 distinct values;
- ``readings``: one list of 200,000 floats;
- ``rows``: 30,000 dicts with the keys ``id``, ``name``, ``score``.

Variants: ``slots`` (Point gets ``__slots__``), ``intern`` (statuses are interned),
``array`` (readings is an ``array('d')``), ``records`` (rows are slotted dataclass
instances). ``benchmarks/deepdive/bench_slim.py`` runs each and compares the traced
memory with memlens's predicted saving.
"""

import os
import sys
from array import array
from dataclasses import dataclass

VARIANT = os.environ.get("SLIM_VARIANT", "")

if VARIANT == "slots":

    class Point:
        __slots__ = ("x", "y", "label")

        def __init__(self, i: int) -> None:
            self.x = float(i)
            self.y = float(i) * 2.0
            self.label = i

else:

    class Point:  # type: ignore[no-redef]
        def __init__(self, i: int) -> None:
            self.x = float(i)
            self.y = float(i) * 2.0
            self.label = i


@dataclass(slots=True)
class Row:
    id: object
    name: object
    score: object


STATUSES = ["pending", "running", "finished", "failed", "cancelled"]


def status(i: int) -> str:
    text = "".join(["status:", STATUSES[i % 5]])  # a new string object every time
    return sys.intern(text) if VARIANT == "intern" else text


points = [Point(i) for i in range(50_000)]
events = [status(i) for i in range(100_000)]
readings_list = [i * 0.5 for i in range(200_000)]
readings = array("d", readings_list) if VARIANT == "array" else readings_list
del readings_list
if VARIANT == "records":
    rows = [Row(i, f"n{i}", i * 0.1) for i in range(30_000)]
else:
    rows = [{"id": i, "name": f"n{i}", "score": i * 0.1} for i in range(30_000)]
