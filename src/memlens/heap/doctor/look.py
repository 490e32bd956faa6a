"""Watch untraced, then look traced: the signals of a two-phase run.

tracemalloc makes every allocation of a step 10-30x slower (a ``plt.subplots``
call: 9 ms untraced, 208 ms under 20 frames), and every checkpoint's snapshot grows
with what the run traced. Whether anything grows, and whether it still grows at
``widen x N``, needs no allocation sites: container lengths, the interpreter's
allocated blocks, the C allocator's bytes in use, unreachable cycles and the atexit
registry say it. So the engine first *watches* the step untraced, on the usual
iteration-count schedule, and ends there when nothing grows. Only when growth was
seen does it *look*: tracing starts, a few calls settle, and a short run of traced
checkpoints finds the allocation sites, which the analysis then follows to their
roots.

The verdict's series come from the watch (long, and untouched by tracing); the
sites from the look. Native growth is the watch's allocator growth less what the
look traced in Python blocks that malloc serves (over 512 B), since the watch's
allocator figure holds both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from memlens.heap.doctor import detect, growth
from memlens.heap.doctor.checkpoints import Checkpoint

WATCH = "watch"  # untraced, deciding whether (and how long) anything grows
LOOK = "look"  # traced, finding the allocation sites of what grew
TRACED = "traced"  # traced from the start (tracing already on, a watch() block)

LOOK_SETTLE = 2  # traced calls before the look's first checkpoint
LOOK_CHECKPOINTS = 12
MAX_SPACING = 8  # calls between two of the look's checkpoints, at most
# Kinds whose watch series is the evidence (tracing changes nothing they read).
WATCH_KINDS = frozenset({"container", "garbage", "atexit"})
COUNT_KINDS = frozenset({"container", "atexit", "blocks"})
SITE_ALPHA = 0.01  # trend significance for a look site that rose in steps


def spacing(watch_signals: Sequence[detect.Signal]) -> int:
    """Calls between the look's checkpoints: enough that the slowest growing count
    (one entry every third call, say) rises between two of them; a count of
    iterations, so that every run looks at the same calls."""
    rates = [
        s.growth.rate
        for s in watch_signals
        if s.kind in COUNT_KINDS and s.state == growth.GROWING and s.growth.rate > 0
    ]
    if not rates:
        return 1
    return max(1, min(MAX_SPACING, math.ceil(1.0 / min(rates))))


def look_calls(every: int) -> int:
    """Step calls the look makes (settling included)."""
    return LOOK_SETTLE + LOOK_CHECKPOINTS * every


def merge(
    watch_signals: Sequence[detect.Signal],
    look_signals: Sequence[detect.Signal],
    look_cps: Sequence[Checkpoint],
) -> list[detect.Signal]:
    """The signals the analysis works from: the look's allocation sites, the watch's
    counts, and the watch's allocator growth less the Python blocks the look traced
    there."""
    out = [_site(s) for s in look_signals if s.kind == "site"]
    out.extend(s for s in watch_signals if s.kind in WATCH_KINDS)
    native = next((s for s in watch_signals if s.kind == "native"), None)
    if native is not None and len(look_cps) >= 2:
        first, last = look_cps[0], look_cps[-1]
        span = max(1, last.iteration - first.iteration)
        python = max(0.0, (last.traced_malloc - first.traced_malloc) / span)
        rate = native.growth.rate - python
        if rate >= detect.MIN_NATIVE_RATE or native.state != growth.GROWING:
            out.append(replace(native, growth=replace(native.growth, rate=max(0.0, rate))))
    elif native is not None:
        out.append(native)
    if not any(s.kind != "native" and s.state == growth.GROWING for s in out):
        # Objects grew while watching, yet the look found no site still growing
        # (a slow leak between two of its checkpoints): the unclear sites say
        # where to look, and the watch's object count that something grew.
        blocks = next((s for s in watch_signals if s.kind == "blocks"), None)
        if blocks is not None and not any(s.kind == "site" for s in out):
            out.append(replace(blocks, growth=replace(blocks.growth, state=growth.UNCLEAR)))
    out.sort(key=lambda s: (s.state != growth.GROWING, -s.growth.rate))
    return out


def _site(s: detect.Signal) -> detect.Signal:
    """A site the look saw rising: the watch has shown the growth sustained, so a site
    whose few traced calls rose with a significant trend (not in every segment: a
    collection's table grows in steps) is one of its sites."""
    g = s.growth
    if (
        g.state == growth.UNCLEAR
        and g.p_value < SITE_ALPHA
        and g.rate >= detect.MIN_SITE_RATE
        and g.end > g.start
    ):
        return replace(s, growth=replace(g, state=growth.GROWING))
    return s
