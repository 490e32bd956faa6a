"""The leak doctor: find every leak, where it is allocated, what holds it, why, and
how to fix it.

Three ways in:

- ``doctor(step, setup=None, teardown=None, …) -> Diagnosis`` repeats ``step(i)``
  until the verdict is confident or the budget runs out;
- ``check(step, …)`` does the same and raises :class:`LeakFound` on a leak;
- ``watch()`` diagnoses a block of code inside a running program::

      w = watch()
      while not w.done:
          with w:
              handle(next_request())
      print(w.diagnosis.verdict)
"""

from __future__ import annotations

from memlens.heap.doctor.api import LeakFound, Watch, check, doctor, watch
from memlens.heap.doctor.diagnosis import (
    CATEGORIES,
    INCONCLUSIVE,
    LEAK,
    NO_LEAK,
    Diagnosis,
    Finding,
    Hop,
    Remedy,
)
from memlens.heap.doctor.iterations import Options

__all__ = [
    "CATEGORIES",
    "INCONCLUSIVE",
    "LEAK",
    "NO_LEAK",
    "Diagnosis",
    "Finding",
    "Hop",
    "LeakFound",
    "Options",
    "Remedy",
    "Watch",
    "check",
    "doctor",
    "watch",
]
