"""Cold fit time beside tiktoken's plain encode, for whichever memlens is importable.

    python benchmarks/context/fit_speed.py new [--rounds 3]
    PYTHONPATH=/path/to/older/checkout/src python benchmarks/context/fit_speed.py old

One generated 500-turn session (``fit_sessions.py``, seed 1) is fitted to 50 %, 25 % and
10 % of its size with empty token, keep-set and sentence caches, each fit timed right after
tiktoken's plain ``encode_ordinary`` of the same texts, so the ratio holds on a loaded
machine. Both clocks are shown: wall time, and this process's CPU time (which other
processes' load does not inflate). Alternate the two commands (old, new, old, new) to
compare two versions side by side; it runs on versions without ``keepset.clear_cache``
too. The last field is a digest of every fitted output (messages and exact token
count): a speed change must leave it as it was.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_sessions import generate  # noqa: E402

from memlens.context.memory import fit_messages, keepset, summarize  # noqa: E402
from memlens.context.memory.messages import measure  # noqa: E402
from memlens.context.tokens import get_counter, load_encoding  # noqa: E402

SHARES = (0.5, 0.25, 0.1)


def _clear_keepsets() -> None:
    clear = getattr(keepset, "clear_cache", None)
    if clear is not None:
        clear()
    else:  # older versions: the same cache, no function for it
        keepset._CACHE.clear()
    clear = getattr(summarize, "clear_cache", None)  # the sentences, on newer versions
    if clear is not None:
        clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("label", nargs="?", default="memlens")
    parser.add_argument("--rounds", type=int, default=1, help="fits per size (medians shown)")
    args = parser.parse_args()
    encoding = load_encoding("cl100k_base")
    counter = get_counter("cl100k_base")
    messages, _ = generate(500, seed=1)
    before = measure(messages, "openai-chat", model=None, system=None, tools=None, counter=counter)
    texts: list[str] = []
    for m in messages:
        content = m.get("content")
        texts.append(content if isinstance(content, str) else str(content or ""))
        texts.extend(str(c["function"]["arguments"]) for c in m.get("tool_calls") or [])
    per = 1000 * 100_000 / before
    wall: dict[float, list[tuple[float, float]]] = {s: [] for s in SHARES}
    cpu: dict[float, list[tuple[float, float]]] = {s: [] for s in SHARES}
    digest = hashlib.sha256()
    for round_ in range(args.rounds):
        for share in SHARES:
            w0, c0 = time.perf_counter(), time.process_time()
            for text in texts:
                encoding.encode_ordinary(text)
            w1, c1 = time.perf_counter(), time.process_time()
            counter.clear()
            _clear_keepsets()
            w2, c2 = time.perf_counter(), time.process_time()
            result = fit_messages(
                messages, budget=int(before * share), pinned=[1], keep_last_turns=2
            )
            w3, c3 = time.perf_counter(), time.process_time()
            wall[share].append(((w3 - w2) * per, (w1 - w0) * per))
            cpu[share].append(((c3 - c2) * per, (c1 - c0) * per))
            if round_ == 0:
                body = json.dumps([result.messages, result.tokens_after], sort_keys=True)
                digest.update(body.encode("utf-8", "surrogatepass"))

    def cells(rows: dict[float, list[tuple[float, float]]], which: int) -> str:
        return ", ".join(f"{statistics.median(r[which] for r in rows[s]):.0f}" for s in SHARES)

    def ratios(rows: dict[float, list[tuple[float, float]]]) -> list[float]:
        return [statistics.median(f / p for f, p in rows[s]) for s in SHARES]

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    for name, rows in (("wall", wall), ("cpu", cpu)):
        r = ratios(rows)
        print(
            f"{args.label} [{name}]: fit {cells(rows, 0)} ms per 100k tokens at "
            f"{', '.join(f'{s:.0%}' for s in SHARES)}; plain encode {cells(rows, 1)}; "
            f"fit / plain encode {', '.join(f'{x:.2f}' for x in r)} "
            f"(median {statistics.median(r):.2f}x)"
        )
    print(
        f"{args.label}: load {load:.1f}, {args.rounds} round(s), outputs {digest.hexdigest()[:16]}"
    )


if __name__ == "__main__":
    main()
