"""Turn a run's checkpoints into growth signals, one per thing that can leak.

Signals: traced bytes per user allocation site, unreachable cycles (GC disabled),
native bytes (allocator in use minus what tracemalloc explains), the length of each
live container, and the atexit registry. Per-type object counts are kept as
supporting evidence only, because the doctor's own bookkeeping creates objects too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from memlens.heap.doctor import growth
from memlens.heap.doctor.checkpoints import Checkpoint, SiteKey

# Smallest growth worth a verdict, per iteration.
MIN_SITE_RATE = 8.0  # bytes
MIN_GARBAGE_RATE = 8.0  # bytes
MIN_CONTAINER_RATE = 0.05  # items
MIN_BLOCKS_RATE = 0.05  # interpreter memory blocks (objects)
BLOCKS_NOISE = 8  # blocks per segment (free lists, interpreter caches)
MIN_NATIVE_RATE = 256.0  # bytes, with mallinfo2
MIN_NATIVE_RATE_RSS = 4096.0  # bytes, when only RSS is available
NATIVE_NOISE = 4 * 1024  # bytes per segment
# Untraced (the watch), the allocator's figure has no tracemalloc tables in it.
NATIVE_NOISE_UNTRACED = 1024
NATIVE_NOISE_RSS = 256 * 1024


@dataclass
class Signal:
    """One series judged by :func:`growth.assess`."""

    kind: str  # site | garbage | native | container | atexit
    key: object  # SiteKey for sites, container id for containers, None otherwise
    growth: growth.Growth
    label: str = ""

    @property
    def state(self) -> str:
        return self.growth.state


def _xs(cps: Sequence[Checkpoint]) -> list[float]:
    return [float(c.iteration) for c in cps]


def evaluate(
    cps: Sequence[Checkpoint],
    malloc: bool,
    gc_disabled: bool,
    baseline_lens: dict[int, tuple[str, int]] | None = None,
    native_floor: float = 0.0,
    blocks: bool = False,
) -> list[Signal]:
    """All signals that are not flat (growing or unclear), biggest rate first.

    ``native_floor`` raises the smallest native rate worth a verdict (bytes per
    iteration) above the allocator's own floor. ``blocks`` adds the interpreter's
    allocated memory blocks, the untraced watch's sign of Python objects piling up
    where no followed container grows (a linked chain, attributes).
    """
    xs = _xs(cps)
    out: list[Signal] = []
    first, last = cps[0], cps[-1]

    sites: set[SiteKey] = set(last.site_bytes)
    for site in sites:
        end = last.site_bytes.get(site, 0)
        if end - first.site_bytes.get(site, 0) <= 0:
            continue
        ys = [float(c.site_bytes.get(site, 0)) for c in cps]
        g = growth.assess(xs, ys, MIN_SITE_RATE)
        if g.state != growth.FLAT:
            out.append(Signal("site", site, g))

    if gc_disabled:
        ys = [float(c.garbage_bytes) for c in cps]
        g = growth.assess(xs, ys, MIN_GARBAGE_RATE)
        if g.state != growth.FLAT:
            out.append(Signal("garbage", None, g, "unreachable cycles"))

    ys = [float(c.native_residual) for c in cps]
    g = growth.assess(
        xs,
        ys,
        max(native_floor, MIN_NATIVE_RATE if malloc else MIN_NATIVE_RATE_RSS),
        noise=(NATIVE_NOISE_UNTRACED if blocks else NATIVE_NOISE) if malloc else NATIVE_NOISE_RSS,
        chunked=True,
    )
    if g.state != growth.FLAT:
        out.append(Signal("native", None, g, "malloc in use" if malloc else "RSS"))

    base = baseline_lens or {}
    for cid, (name, _n_end) in last.container_lens.items():
        head = base.get(cid)
        if head is None or head[0] != name:
            continue
        ys = [float(c.container_lens.get(cid, head)[1]) for c in cps]
        if ys[-1] <= ys[0]:
            continue
        g = growth.assess(xs, ys, MIN_CONTAINER_RATE)
        if g.state != growth.FLAT:
            out.append(Signal("container", cid, g, name))

    if blocks:
        ys = [float(c.blocks) for c in cps]
        g = growth.assess(xs, ys, MIN_BLOCKS_RATE, noise=BLOCKS_NOISE)
        if g.state != growth.FLAT:
            out.append(Signal("blocks", None, g, "Python objects"))

    ys = [float(c.atexit_callbacks) for c in cps]
    if ys[-1] > ys[0]:
        g = growth.assess(xs, ys, MIN_CONTAINER_RATE)
        if g.state != growth.FLAT:
            out.append(Signal("atexit", None, g, "atexit registry"))

    out.sort(key=lambda s: (s.state != growth.GROWING, -s.growth.rate))
    return out


def type_rates(first: dict[str, int], last: dict[str, int], span: int) -> dict[str, float]:
    """Growth per iteration of live objects of each type (supporting evidence)."""
    rates: dict[str, float] = {}
    for name, n in last.items():
        d = n - first.get(name, 0)
        if d > 0:
            rates[name] = d / max(1, span)
    return rates
