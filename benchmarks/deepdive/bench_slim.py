"""``memlens slim`` predictions against an A/B rerun with each change applied.

    python benchmarks/deepdive/bench_slim.py

Runs ``corpus/slim_case.py`` once under ``memlens slim`` (JSON) for the predictions,
then once per variant (``SLIM_VARIANT=slots|intern|array|records``) and once plain,
each in a fresh interpreter that measures the traced memory held at the end; the
measured saving of a change is plain minus variant. Prints predicted vs measured and
whether each is within ±10 % (the target in truth.json).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASE = HERE / "corpus" / "slim_case.py"
VARIANTS = {"slots": "slots", "intern": "intern", "array": "array", "records": "dict-to-class"}
MEASURE = (
    "import runpy, sys, tracemalloc, gc\n"
    "tracemalloc.start(1)\n"
    "g = runpy.run_path(sys.argv[1], run_name='__main__')\n"
    "gc.collect()\n"
    "print(tracemalloc.get_traced_memory()[0])\n"
)


def traced(variant: str) -> int:
    env = dict(os.environ, SLIM_VARIANT=variant)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(CASE)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    truth = json.loads((HERE / "corpus" / "truth.json").read_text())["slim"]["slim_case.py"]
    tolerance = truth["ab_tolerance"]
    out = subprocess.run(
        [sys.executable, "-m", "memlens", "slim", str(CASE), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    predicted = {r["kind"]: r["saving"] for r in json.loads(out.stdout)["recommendations"]}
    plain = traced("")
    print(f"{'change':>14} {'predicted':>12} {'measured A/B':>13} {'error':>7}")
    ok = True
    for variant, kind in VARIANTS.items():
        measured = plain - traced(variant)
        guess = predicted.get(kind, 0)
        error = (guess - measured) / measured if measured else float("inf")
        ok &= abs(error) <= tolerance
        print(f"{kind:>14} {guess:>12,} {measured:>13,} {error:>+7.1%}")
    print(f"all within ±{tolerance:.0%}:", "yes" if ok else "NO")


if __name__ == "__main__":
    main()
