"""Is a series of checkpoint values a leak, a plateau, or not yet clear?

A leak raises the *floor* of a series again and again; everything that merely looks
like one does not:

- a cache filling to its bound, a lazily built table, a ring buffer at its cap and
  interning of a fixed vocabulary raise the floor for a while, then stop;
- a one-time initialisation raises it once;
- a buffer cleared every N steps lifts it only until the next clear, so the
  minimum over any window longer than N does not move.

So the measured checkpoints are split into equal segments, and each segment is
summarised by its minimum. A series is **growing** when the floor rose in every one
of the last ``need`` segment steps, at a rate above the noise floor, and the whole
series has a significant Mann–Kendall trend (``core.trend``). It is **flat** when the
floor did not rise over the most recent segments. Anything else is **unclear** and
asks for more iterations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from memlens.core.trend import assess_trend

GROWING = "growing"
FLAT = "flat"
UNCLEAR = "unclear"


@dataclass(frozen=True)
class Growth:
    """Verdict on one series; ``rate`` is units per iteration (Theil–Sen)."""

    state: str
    rate: float
    p_value: float
    segment_steps: tuple[float, ...]
    start: float
    end: float

    @property
    def growing(self) -> bool:
        return self.state == GROWING


def segment_minima(values: Sequence[float], segments: int) -> list[float]:
    """Split ``values`` into ``segments`` nearly equal consecutive runs; their minima."""
    n = len(values)
    segments = max(1, min(segments, n))
    out = []
    for k in range(segments):
        lo = (k * n) // segments
        hi = ((k + 1) * n) // segments
        out.append(min(values[lo:hi]))
    return out


def assess(
    xs: Sequence[float],
    ys: Sequence[float],
    min_rate: float,
    noise: float = 0.0,
    segments: int = 5,
    need: int = 4,
    flat_steps: int = 2,
    alpha: float = 0.01,
    chunked: bool = False,
    against_peak: bool = False,
) -> Growth:
    """Classify ``ys`` (values at iterations ``xs``) as growing, flat or unclear.

    ``min_rate`` is the smallest growth per iteration worth reporting; ``noise`` is
    the change per segment that is still considered no change. ``chunked`` is for
    memory that grows in blocks (an allocator's arena, a pool): such a series is not
    called flat while the quiet stretch since its last block is too short to tell.
    ``against_peak`` measures each recent floor against the highest floor before it
    rather than against the one just before: for estimates that scatter (sampled
    bytes), a floor that dipped and came back is no rise.
    """
    n = len(ys)
    if n < segments + 1:
        return Growth(UNCLEAR, 0.0, 1.0, (), ys[0] if n else 0.0, ys[-1] if n else 0.0)
    mins = segment_minima(ys, segments)
    steps = tuple(b - a for a, b in zip(mins, mins[1:]))
    span = (xs[-1] - xs[0]) / segments if xs[-1] > xs[0] else 1.0
    threshold = max(noise, 0.25 * min_rate * span)
    trend = assess_trend(list(xs), list(ys))
    rate = trend.slope
    recent = steps[-need:]
    rising = len(recent) == need and all(s > threshold for s in recent)
    # The floor must rise at a pace consistent with the overall rate: a single
    # jump followed by tiny creeping steps is a one-off, not a leak.
    consistent = rising and min(recent) >= 0.2 * max(recent)
    if consistent and trend.p_value < alpha and rate >= min_rate:
        state = GROWING
    elif _quiet(mins, steps, flat_steps, threshold, against_peak) and not (
        chunked and _quiet_too_short(xs, ys, threshold)
    ):
        state = FLAT
    else:
        state = UNCLEAR
    if math.isnan(rate):
        rate = 0.0
    return Growth(state, rate, trend.p_value, steps, float(ys[0]), float(ys[-1]))


def _quiet(
    mins: Sequence[float],
    steps: Sequence[float],
    flat_steps: int,
    threshold: float,
    against_peak: bool,
) -> bool:
    """Did the floor stay put over the last ``flat_steps`` segments?"""
    if not against_peak:
        return all(s <= threshold for s in steps[-flat_steps:])
    first = len(mins) - flat_steps
    return all(mins[j] <= max(mins[:j]) + threshold for j in range(max(1, first), len(mins)))


def _quiet_too_short(xs: Sequence[float], ys: Sequence[float], threshold: float) -> bool:
    """Memory that grows in blocks looks flat between two blocks. The readings rose
    by a held block (a jump of more than ``threshold`` never given back) at
    iteration J; as with growth first seen (see ``iterations``), quiet is believed
    only once it has lasted as long again, to iteration 2·J, so that blocks coming
    further and further apart (an arena doubling) are not taken for a bound."""
    last = 0.0
    for k in range(1, len(ys)):
        if ys[k] - ys[k - 1] > threshold and min(ys[k:]) > ys[k - 1] + 0.5 * threshold:
            last = xs[k]
    return last > 0 and xs[-1] < 2 * last
