"""Robust growth statistics shared by the leak doctor and the monitor.

Memory series are noisy, autocorrelated and spiky, so ordinary least squares and a
plain significance test both cry wolf. memlens uses:

- the Theil–Sen estimator (median of pairwise slopes) for the growth rate, which
  ignores up to ~29 % outliers;
- the Mann–Kendall trend test with the Hamed–Rao variance correction, so that
  autocorrelated samples (one allocation seen by several reads) do not inflate
  significance;
- per-window minima, so that transient spikes (a request's temporary buffers) do
  not count as growth: memory that is really retained raises the floor;
- a plateau check comparing the most recent part of the series with the whole, so
  that a cache filling up to its bound is not called a leak once it stops.

Everything is pure Python over small series (tens to a few hundred points); callers
thin long series with :func:`window_minima` first.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from memlens.core.record import record

_MAX_PAIRS = 20_000


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Return ``(slope, intercept)`` by the Theil–Sen estimator.

    With more than ~200 points a fixed-seed random sample of pairs is used, which
    keeps the cost bounded and the answer repeatable.
    """
    n = len(xs)
    if n != len(ys):
        raise ValueError("xs and ys differ in length")
    if n < 2:
        return 0.0, float(ys[0]) if n else 0.0
    slopes: list[float] = []
    total_pairs = n * (n - 1) // 2
    if total_pairs <= _MAX_PAIRS:
        for i in range(n - 1):
            xi, yi = xs[i], ys[i]
            for j in range(i + 1, n):
                dx = xs[j] - xi
                if dx:
                    slopes.append((ys[j] - yi) / dx)
    else:
        rng = random.Random(n)
        for _ in range(_MAX_PAIRS):
            i, j = rng.randrange(n), rng.randrange(n)
            dx = xs[j] - xs[i]
            if dx:
                slopes.append((ys[j] - ys[i]) / dx)
    if not slopes:
        return 0.0, _median(list(ys))
    slope = _median(slopes)
    intercept = _median([y - slope * x for x, y in zip(xs, ys)])
    return slope, intercept


def _median(values: list[float]) -> float:
    values.sort()
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


def _sign(v: float) -> int:
    return (v > 0) - (v < 0)


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


@record(frozen=True)
class MannKendall:
    """Result of the Mann–Kendall test: ``p_increasing`` is the one-sided p-value."""

    s: int
    z: float
    tau: float
    p_increasing: float
    p_two_sided: float
    variance_correction: float


def mann_kendall(
    ys: Sequence[float], xs: Sequence[float] | None = None, autocorrelation: bool = True
) -> MannKendall:
    """Mann–Kendall monotonic-trend test, Hamed–Rao corrected for autocorrelation."""
    n = len(ys)
    if n < 3:
        return MannKendall(0, 0.0, 0.0, 1.0, 1.0, 1.0)
    s = 0
    for i in range(n - 1):
        yi = ys[i]
        for j in range(i + 1, n):
            s += _sign(ys[j] - yi)
    # Tie correction.
    counts: dict[float, int] = {}
    for y in ys:
        counts[y] = counts.get(y, 0) + 1
    tie_term = sum(t * (t - 1) * (2 * t + 5) for t in counts.values() if t > 1)
    variance = (n * (n - 1) * (2 * n + 5) - tie_term) / 18.0
    correction = 1.0
    if autocorrelation and n >= 8:
        correction = _hamed_rao_factor(ys, xs)
    variance *= correction
    if variance <= 0:
        return MannKendall(s, 0.0, 0.0, 1.0, 1.0, correction)
    if s > 0:
        z = (s - 1) / math.sqrt(variance)
    elif s < 0:
        z = (s + 1) / math.sqrt(variance)
    else:
        z = 0.0
    tau = s / (n * (n - 1) / 2)
    p_inc = 0.5 * math.erfc(z / math.sqrt(2))
    p_two = math.erfc(abs(z) / math.sqrt(2))
    return MannKendall(s, z, tau, p_inc, p_two, correction)


def _hamed_rao_factor(ys: Sequence[float], xs: Sequence[float] | None) -> float:
    n = len(ys)
    xs_ = list(xs) if xs is not None else [float(i) for i in range(n)]
    slope, _ = theil_sen(xs_, ys)
    detrended = [y - slope * x for x, y in zip(xs_, ys)]
    ranks = _ranks(detrended)
    mean = sum(ranks) / n
    centered = [r - mean for r in ranks]
    denom = sum(c * c for c in centered)
    if denom == 0:
        return 1.0
    bound = 1.96 / math.sqrt(n)
    acc = 0.0
    for k in range(1, n - 2):
        rk = sum(centered[i] * centered[i + k] for i in range(n - k)) / denom
        if abs(rk) > bound:
            acc += (n - k) * (n - k - 1) * (n - k - 2) * rk
    factor = 1 + 2 / (n * (n - 1) * (n - 2)) * acc
    # A negative or tiny factor comes from anti-correlation noise; never let the
    # correction make a test *more* confident than the uncorrected one.
    return max(factor, 1.0)


def window_minima(
    ts: Sequence[float], ys: Sequence[float], window: float
) -> tuple[list[float], list[float]]:
    """Collapse a series to one point per ``window`` seconds: the window's minimum.

    The time of each point is the window's midpoint. Spikes vanish; the floor that
    retained memory raises stays.
    """
    if not ts:
        return [], []
    if window <= 0:
        return list(ts), list(ys)
    out_t: list[float] = []
    out_y: list[float] = []
    start = ts[0]
    current = math.floor((ts[0] - start) / window)
    low = ys[0]
    for t, y in zip(ts, ys):
        idx = math.floor((t - start) / window)
        if idx != current:
            out_t.append(start + (current + 0.5) * window)
            out_y.append(low)
            current, low = idx, y
        elif y < low:
            low = y
    out_t.append(start + (current + 0.5) * window)
    out_y.append(low)
    return out_t, out_y


@record(frozen=True)
class Trend:
    """Growth of one series: rate, significance and whether it has levelled off.

    ``slope`` is in the series' unit per x-unit (bytes per second, bytes per
    iteration, …). ``recent_slope`` is the Theil–Sen slope over the last
    ``recent_fraction`` of the points. ``plateaued`` means the series grew
    earlier but the recent part is flat.
    """

    n: int
    slope: float
    intercept: float
    recent_slope: float
    tau: float
    z: float
    p_value: float
    plateaued: bool

    def growing(self, alpha: float = 0.01, min_slope: float = 0.0) -> bool:
        """Sustained, significant growth faster than ``min_slope`` that has not stopped."""
        return (
            self.n >= 4
            and self.p_value < alpha
            and self.slope > min_slope
            and self.recent_slope > min_slope
            and not self.plateaued
        )


def assess_trend(
    xs: Sequence[float],
    ys: Sequence[float],
    recent_fraction: float = 1 / 3,
    plateau_ratio: float = 0.2,
    autocorrelation: bool = True,
) -> Trend:
    """Assess growth of ``ys`` over ``xs`` (see :class:`Trend`)."""
    n = len(xs)
    if n < 3:
        slope, intercept = theil_sen(xs, ys) if n else (0.0, 0.0)
        return Trend(n, slope, intercept, slope, 0.0, 0.0, 1.0, False)
    slope, intercept = theil_sen(xs, ys)
    mk = mann_kendall(ys, xs, autocorrelation=autocorrelation)
    k = max(3, int(math.ceil(n * recent_fraction)))
    recent_slope, _ = theil_sen(xs[-k:], ys[-k:])
    plateaued = False
    if slope > 0:
        recent_mk = mann_kendall(ys[-k:], xs[-k:], autocorrelation=False)
        plateaued = recent_slope <= plateau_ratio * slope and recent_mk.p_increasing > 0.05
    return Trend(n, slope, intercept, recent_slope, mk.tau, mk.z, mk.p_increasing, plateaued)
