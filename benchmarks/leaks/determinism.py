"""Same case, same answer: run corpus cases N times, alternating CLI and API.

For each case it prints the answer of every run (verdict, site, root, category,
iterations, checkpoints) and whether all runs agree. A case agrees when every run
gives the same verdict, site, root and category; iterations and checkpoints are
shown because the doctor's schedule is meant to depend on iteration counts only.

Usage: python benchmarks/leaks/determinism.py [--runs 5] [--load N] CASE.py [CASE.py ...]

``--load N`` starts N busy-looping processes for the duration (a loaded machine).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))

_API = (
    "import json, sys; sys.path.insert(0, {folder!r});"
    "from memlens.heap.doctor.targets import load;"
    "from memlens.heap.doctor import doctor;"
    "t = load({path!r});"
    "d = doctor(t.step, setup=t.setup, teardown=t.teardown, name=t.name,"
    " user_roots=t.user_roots);"
    "print(d.to_json(indent=None))"
)


def _busy() -> None:  # pragma: no cover - a load generator
    while True:
        pass


def run_once(path: str, face: str) -> dict[str, Any]:
    folder = os.path.dirname(path)
    if face == "api":
        args = [sys.executable, "-c", _API.format(folder=folder, path=path)]
    else:
        args = [sys.executable, "-m", "memlens", "doctor", path, "-f", "json", "--no-save"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, cwd=folder)
    if proc.returncode not in (0, 1, 3):
        return {"face": face, "error": proc.stderr.strip().splitlines()[-1:]}
    d = json.loads(proc.stdout)
    first = d["findings"][0] if d["findings"] else {}
    return {
        "face": face,
        "verdict": d["verdict"],
        "site": first.get("site"),
        "root": first.get("root"),
        "category": first.get("category"),
        "iterations": d["iterations"],
        "checkpoints": d["checkpoints"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", nargs="+")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--load", type=int, default=0, help="busy-looping processes meanwhile")
    opts = ap.parse_args()
    loaders = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(opts.load)]
    for p in loaders:
        p.start()
    agree = 0
    try:
        for case in opts.cases:
            path = os.path.realpath(case if os.path.exists(case) else os.path.join(HERE, case))
            runs = [run_once(path, "cli" if k % 2 == 0 else "api") for k in range(opts.runs)]
            keys = {
                (r.get("verdict"), r.get("site"), r.get("root"), r.get("category")) for r in runs
            }
            same = len(keys) == 1 and "error" not in runs[0]
            agree += same
            print(
                f"{os.path.basename(path)}: {'same' if same else 'DIFFERENT'} in {opts.runs} runs"
            )
            for r in runs:
                print("   ", json.dumps(r))
    finally:
        for p in loaders:
            p.terminate()
    print(f"{agree}/{len(opts.cases)} cases gave one answer in {opts.runs} runs (CLI and API)")
    return 0 if agree == len(opts.cases) else 1


if __name__ == "__main__":
    sys.exit(main())
