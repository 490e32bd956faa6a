"""Cold fit time beside tiktoken's plain encode, for whichever memlens is importable.

    python benchmarks/context/fit_speed.py new
    PYTHONPATH=/path/to/older/checkout/src python benchmarks/context/fit_speed.py old

One generated 500-turn session (``fit_sessions.py``, seed 1) is fitted to 50 %, 25 % and
10 % of its size with empty token and keep-set caches, each fit timed right after
tiktoken's plain ``encode_ordinary`` of the same texts, so the ratio holds on a loaded
machine. Alternate the two commands (old, new, old, new) to compare two versions side
by side; it runs on versions without ``keepset.clear_cache`` too.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_sessions import generate  # noqa: E402

from memlens.context.memory import fit_messages, keepset  # noqa: E402
from memlens.context.memory.messages import measure  # noqa: E402
from memlens.context.tokens import get_counter, load_encoding  # noqa: E402


def _clear_keepsets() -> None:
    clear = getattr(keepset, "clear_cache", None)
    if clear is not None:
        clear()
    else:  # older versions: the same cache, no function for it
        keepset._CACHE.clear()


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else "memlens"
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
    fits, plains = [], []
    for share in (0.5, 0.25, 0.1):
        t0 = time.perf_counter()
        for text in texts:
            encoding.encode_ordinary(text)
        plains.append((time.perf_counter() - t0) * per)
        counter.clear()
        _clear_keepsets()
        t0 = time.perf_counter()
        fit_messages(messages, budget=int(before * share), pinned=[1], keep_last_turns=2)
        fits.append((time.perf_counter() - t0) * per)
    ratios = [f / p for f, p in zip(fits, plains, strict=True)]
    print(
        f"{label}: fit {', '.join(f'{f:.0f}' for f in fits)} ms per 100k tokens, plain encode "
        f"{', '.join(f'{p:.0f}' for p in plains)}; fit / plain encode "
        f"{', '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f}x)"
    )


if __name__ == "__main__":
    main()
