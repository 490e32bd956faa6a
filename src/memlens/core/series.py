"""Bounded, tiered time series of samples.

A :class:`Series` keeps every field of recent samples raw, and min/mean/max/count
aggregates per window for older ones (by default raw for an hour, 1-minute windows
for a day, 1-hour windows for 30 days). Values live in ``array('d')`` rings, 8 bytes
a value, so 30 days at 1 Hz with a dozen fields stays around a megabyte.

Times are float seconds on whatever clock the caller uses (monotonic seconds since
a session start, or an injectable clock); the series never reads a clock itself.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from memlens.core.record import record

NAN = float("nan")


@record(frozen=True)
class Sample:
    """One reading of every field at time ``t``."""

    t: float
    values: Mapping[str, float]

    def __getitem__(self, key: str) -> float:
        return self.values[key]


@record(frozen=True)
class Aggregate:
    """Min/mean/max/count of one field over the window ``[start, start + width)``."""

    start: float
    width: float
    min: float
    mean: float
    max: float
    count: int


@record(frozen=True)
class TierSpec:
    """An aggregate tier: windows of ``width`` seconds kept for ``retention`` seconds."""

    width: float
    retention: float

    @property
    def capacity(self) -> int:
        return max(1, int(math.ceil(self.retention / self.width)))


DEFAULT_TIERS: tuple[TierSpec, ...] = (
    TierSpec(60.0, 86_400.0),
    TierSpec(3_600.0, 30 * 86_400.0),
)


class _Ring:
    """Fixed-capacity ring of float columns sharing one write position."""

    __slots__ = ("capacity", "columns", "start", "size")

    def __init__(self, capacity: int, ncols: int) -> None:
        self.capacity = capacity
        self.columns = [array("d") for _ in range(ncols)]
        self.start = 0
        self.size = 0

    def add_column(self) -> None:
        self.columns.append(
            array("d", [NAN]) * len(self.columns[0]) if self.columns else array("d")
        )

    def push(self, row: Sequence[float]) -> None:
        if self.size < self.capacity:
            for col, v in zip(self.columns, row):
                col.append(v)
            self.size += 1
        else:
            pos = self.start
            for col, v in zip(self.columns, row):
                col[pos] = v
            self.start = (self.start + 1) % self.capacity

    def rows(self) -> Iterator[tuple[float, ...]]:
        for k in range(self.size):
            i = (self.start + k) % self.capacity if self.size == self.capacity else k
            yield tuple(col[i] for col in self.columns)

    def column(self, idx: int) -> list[float]:
        col = self.columns[idx]
        if self.size < self.capacity:
            return col.tolist()
        return col[self.start :].tolist() + col[: self.start].tolist()

    def nbytes(self) -> int:
        return sum(c.buffer_info()[1] * c.itemsize for c in self.columns)


class Series:
    """A bounded, tiered multi-field time series (see module docstring)."""

    def __init__(
        self,
        fields: Iterable[str] = (),
        raw_capacity: int = 3_600,
        tiers: Sequence[TierSpec] = DEFAULT_TIERS,
    ) -> None:
        if raw_capacity < 1:
            raise ValueError("raw_capacity must be at least 1")
        self.fields: list[str] = []
        self._index: dict[str, int] = {}
        self.raw_capacity = raw_capacity
        self.tiers: tuple[TierSpec, ...] = tuple(tiers)
        self._raw = _Ring(raw_capacity, 1)  # column 0 is time
        # Per tier: ring of closed windows with columns [start, count, then min/sum/max per field].
        self._agg = [_Ring(spec.capacity, 2) for spec in self.tiers]
        # Per tier: the window still open (start, count, [min, sum, max] per field).
        self._open: list[list[float] | None] = [None for _ in self.tiers]
        self.count = 0
        for name in fields:
            self._add_field(name)

    # -- writing -----------------------------------------------------------------
    def _add_field(self, name: str) -> int:
        idx = len(self.fields)
        self.fields.append(name)
        self._index[name] = idx
        self._raw.add_column()
        for ring, open_ in zip(self._agg, self._open):
            for _ in range(3):
                ring.add_column()
            if open_ is not None:
                open_.extend([NAN, 0.0, NAN])
        return idx

    def append(self, t: float, values: Mapping[str, float]) -> None:
        """Add a sample; fields not seen before become new columns."""
        for name in values:
            if name not in self._index:
                self._add_field(name)
        row = [float(t)] + [float(values.get(name, NAN)) for name in self.fields]
        self._raw.push(row)
        self.count += 1
        for k, spec in enumerate(self.tiers):
            self._fold(k, spec, row)

    def _fold(self, k: int, spec: TierSpec, row: list[float]) -> None:
        t = row[0]
        window_start = math.floor(t / spec.width) * spec.width
        open_ = self._open[k]
        if open_ is not None and open_[0] != window_start:
            self._agg[k].push(open_)
            open_ = None
        if open_ is None:
            open_ = [window_start, 0.0]
            for v in row[1:]:
                open_.extend([v, 0.0 if math.isnan(v) else v, v])
            open_[1] = 1.0
            self._open[k] = open_
            return
        open_[1] += 1
        for i, v in enumerate(row[1:]):
            if math.isnan(v):
                continue
            base = 2 + 3 * i
            lo = open_[base]
            if math.isnan(lo) or v < lo:
                open_[base] = v
            open_[base + 1] += v
            hi = open_[base + 2]
            if math.isnan(hi) or v > hi:
                open_[base + 2] = v

    # -- reading -----------------------------------------------------------------
    def __len__(self) -> int:
        return self._raw.size

    def samples(self) -> list[Sample]:
        """The raw samples still held, oldest first."""
        out = []
        for row in self._raw.rows():
            values = {
                name: row[i + 1] for i, name in enumerate(self.fields) if not math.isnan(row[i + 1])
            }
            out.append(Sample(row[0], values))
        return out

    def times(self) -> list[float]:
        return self._raw.column(0)

    def column(self, name: str) -> list[float]:
        """Raw values of one field, oldest first (NaN where a sample lacked it)."""
        return self._raw.column(self._index[name] + 1)

    def last(self) -> Sample | None:
        if not self._raw.size:
            return None
        return self.samples()[-1]

    def aggregates(self, name: str, tier: int = 0) -> list[Aggregate]:
        """Closed and open windows of one field in one tier, oldest first."""
        idx = self._index[name]
        spec = self.tiers[tier]
        rows = list(self._agg[tier].rows())
        if self._open[tier] is not None:
            rows.append(tuple(self._open[tier]))  # type: ignore[arg-type]
        out = []
        for row in rows:
            count = int(row[1])
            base = 2 + 3 * idx
            if base + 2 >= len(row) or count == 0:
                continue
            lo, total, hi = row[base], row[base + 1], row[base + 2]
            if math.isnan(lo):
                continue
            out.append(Aggregate(row[0], spec.width, lo, total / count, hi, count))
        return out

    def points(self, name: str, since: float | None = None) -> list[Aggregate]:
        """The best-resolution history of one field since ``since``.

        Recent times come from raw samples (as windows of width 0), older times from
        the finest tier that still covers them.
        """
        times = self.times()
        raw_start = times[0] if times else math.inf
        out: list[Aggregate] = []
        covered_from = raw_start
        for tier in range(len(self.tiers)):
            older = [
                a
                for a in self.aggregates(name, tier)
                if a.start + a.width <= covered_from
                and (since is None or a.start + a.width > since)
            ]
            if older:
                out = older + out
                covered_from = older[0].start
        for t, v in zip(times, self.column(name)):
            if (since is None or t >= since) and not math.isnan(v):
                out.append(Aggregate(t, 0.0, v, v, v, 1))
        return out

    def first_and_highest(self, name: str) -> tuple[Aggregate, float] | None:
        """``points(name)[0]`` and the highest finite ``max`` among ``points(name)``.

        Read from the columns, one tier at a time, without building the points: for a
        full 30-day history those are ~1.8 MiB of records, and the monitor's history
        flush needs only these two. ``None`` when the field has no value.
        """
        idx = self._index.get(name)
        if idx is None:
            return None
        times = self.times()
        covered_from = times[0] if times else math.inf
        first: Aggregate | None = None
        highest = -math.inf
        base = 2 + 3 * idx
        for tier, spec in enumerate(self.tiers):
            ring, open_ = self._agg[tier], self._open[tier]
            if base + 2 >= len(ring.columns):
                continue
            starts, counts = ring.column(0), ring.column(1)
            lows, sums, highs = ring.column(base), ring.column(base + 1), ring.column(base + 2)
            if open_ is not None:
                for col, value in zip(
                    (starts, counts, lows, sums, highs), open_[:2] + open_[base : base + 3]
                ):
                    col.append(value)
            older = None
            for start, count, lo, total, hi in zip(starts, counts, lows, sums, highs):
                if start + spec.width > covered_from:
                    break  # windows are in time order: the rest are newer
                if count == 0 or math.isnan(lo):
                    continue
                if older is None:
                    older = Aggregate(start, spec.width, lo, total / count, hi, int(count))
                if math.isfinite(hi):
                    highest = max(highest, hi)
            if older is not None:
                first, covered_from = older, older.start
        for t, v in zip(times, self.column(name)):
            if math.isnan(v):
                continue
            if first is None:
                first = Aggregate(t, 0.0, v, v, v, 1)
            if math.isfinite(v):
                highest = max(highest, v)
        return None if first is None else (first, highest)

    def nbytes(self) -> int:
        """Approximate memory held by the series' value buffers."""
        return self._raw.nbytes() + sum(r.nbytes() for r in self._agg) + 64 * len(self.fields)

    # -- serialization -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` restores an equal series."""
        return {
            "fields": list(self.fields),
            "raw_capacity": self.raw_capacity,
            "tiers": [[s.width, s.retention] for s in self.tiers],
            "count": self.count,
            "raw": [_json_row(r) for r in self._raw.rows()],
            "aggregates": [[_json_row(r) for r in ring.rows()] for ring in self._agg],
            "open": [None if o is None else _json_row(o) for o in self._open],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Series:
        series = cls(
            data["fields"],
            raw_capacity=int(data["raw_capacity"]),
            tiers=[TierSpec(float(w), float(r)) for w, r in data["tiers"]],
        )
        for row in data["raw"]:
            series._raw.push(_float_row(row))
        for ring, rows in zip(series._agg, data["aggregates"]):
            for row in rows:
                ring.push(_float_row(row))
        series._open = [None if o is None else _float_row(o) for o in data["open"]]
        series.count = int(data["count"])
        return series

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Series):
            return NotImplemented
        return self.to_dict() == other.to_dict()


def _json_row(row: Sequence[float]) -> list[float | None]:
    # JSON has no NaN; None stands for "no value".
    return [None if isinstance(v, float) and math.isnan(v) else v for v in row]


def _float_row(row: Sequence[float | None]) -> list[float]:
    return [NAN if v is None else float(v) for v in row]
