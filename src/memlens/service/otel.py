"""OpenTelemetry export: observable instruments read on collection (the ``otel`` extra).

Semantic-convention names where they exist — ``process.memory.usage``,
``process.memory.virtual`` (UpDownCounters, ``By``), ``cpython.gc.collections``,
``cpython.gc.collected_objects``, ``cpython.gc.uncollectable_objects`` (Counters with
attribute ``cpython.gc.generation``) — and ``memlens.*`` for the rest: USS, PSS,
swap, peak RSS, traced heap, growth rate, active leaks, component bytes, GC pause.

    from memlens.service.otel import instrument
    instrument(monitor)               # uses the global MeterProvider
    instrument(monitor, provider)     # or an explicit one
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from memlens.core.errors import require

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor

GENERATION = "cpython.gc.generation"
COMPONENT = "memlens.component"


class OtelInstruments:
    """The instruments created for one monitor (kept so they are not collected)."""

    def __init__(self, monitor: Monitor, meter: Any) -> None:
        self.monitor = monitor
        self.meter = meter
        self.instruments: list[Any] = []


def instrument(monitor: Monitor, meter_provider: Any = None) -> OtelInstruments:
    """Create the observable instruments on ``meter_provider`` (default: global)."""
    metrics = require("opentelemetry.metrics", "otel")
    provider = meter_provider if meter_provider is not None else metrics.get_meter_provider()
    from memlens.core.version import __version__

    meter = provider.get_meter("memlens", __version__)
    out = OtelInstruments(monitor, meter)
    Observation = metrics.Observation

    def reading(key: str) -> Callable[[Any], Iterable[Any]]:
        def callback(options: Any) -> Iterable[Any]:
            value = monitor.current().get(key)
            return [] if value is None else [Observation(value)]

        return callback

    def per_generation(attr: str) -> Callable[[Any], Iterable[Any]]:
        def callback(options: Any) -> Iterable[Any]:
            return [
                Observation(getattr(g, attr), {GENERATION: g.generation})
                for g in monitor.gc_stats()
            ]

        return callback

    add = out.instruments.append
    add(
        meter.create_observable_up_down_counter(
            "process.memory.usage",
            [reading("rss")],
            unit="By",
            description="The amount of physical memory in use (RSS).",
        )
    )
    add(
        meter.create_observable_up_down_counter(
            "process.memory.virtual",
            [reading("vms")],
            unit="By",
            description="The amount of committed virtual memory.",
        )
    )
    if "gc" in monitor.backends:
        add(
            meter.create_observable_counter(
                "cpython.gc.collections",
                [per_generation("collections")],
                unit="{collection}",
                description="The number of times a generation was collected since monitoring started.",
            )
        )
        add(
            meter.create_observable_counter(
                "cpython.gc.collected_objects",
                [per_generation("collected")],
                unit="{object}",
                description="Objects collected by the GC since monitoring started.",
            )
        )
        add(
            meter.create_observable_counter(
                "cpython.gc.uncollectable_objects",
                [per_generation("uncollectable")],
                unit="{object}",
                description="Uncollectable objects found by the GC since monitoring started.",
            )
        )
        add(
            meter.create_observable_counter(
                "memlens.gc.pause.time",
                [per_generation("pause_total")],
                unit="s",
                description="Total time spent in GC pauses, by generation.",
            )
        )
    for key, name, description in (
        ("uss", "memlens.memory.uss", "Unique set size: memory freed if the process exited."),
        ("pss", "memlens.memory.pss", "Proportional set size."),
        ("swap", "memlens.memory.swap", "Process memory swapped out."),
        ("peak_rss", "memlens.memory.peak", "Peak resident set size."),
        ("traced", "memlens.memory.traced", "Python heap bytes traced by tracemalloc."),
    ):
        add(meter.create_observable_gauge(name, [reading(key)], unit="By", description=description))

    from memlens.heap.fragmentation import ALLOCATOR_GAUGES, allocator_gauges

    def allocator(key: str) -> Callable[[Any], Iterable[Any]]:
        def callback(options: Any) -> Iterable[Any]:
            value = allocator_gauges().get(key)
            return [] if value is None else [Observation(value)]

        return callback

    for key, name, description in ALLOCATOR_GAUGES:
        otel_name = "memlens.memory." + name.removesuffix("_bytes").replace("_", ".", 1)
        add(
            meter.create_observable_gauge(
                otel_name, [allocator(key)], unit="By", description=description
            )
        )

    def growth(options: Any) -> Iterable[Any]:
        rate = monitor.get_memory_trends(10, max_points=1)["growth_rate_bytes_per_second"]
        return [Observation(rate)]

    def leak_rates(options: Any) -> Iterable[Any]:
        return [
            Observation(a.growth_rate, {COMPONENT: a.component}) for a in monitor.leaks.active()
        ]

    def leaks_active(options: Any) -> Iterable[Any]:
        return [Observation(len(monitor.leaks.alerts))]

    def components(options: Any) -> Iterable[Any]:
        return [
            Observation(u.current, {COMPONENT: name})
            for name, u in monitor.heapwatch.usage().items()
        ]

    add(
        meter.create_observable_gauge(
            "memlens.memory.growth_rate",
            [growth],
            unit="By/s",
            description="Robust growth rate of the RSS floor over the last 10 minutes.",
        )
    )
    add(
        meter.create_observable_gauge(
            "memlens.leak.growth_rate",
            [leak_rates],
            unit="By/s",
            description="Growth rate of each active leak alert.",
        )
    )
    add(
        meter.create_observable_gauge(
            "memlens.leak.active", [leaks_active], unit="{leak}", description="Active leak alerts."
        )
    )

    def sites(options: Any) -> Iterable[Any]:
        source = monitor.heapwatch.source
        if source == "off":
            return []
        return [
            Observation(
                s.size,
                {
                    "memlens.site": f"{s.filename}:{s.lineno}",
                    "memlens.function": s.function,
                    "memlens.source": source,
                },
            )
            for s in monitor.top_sites()
        ]

    add(
        meter.create_observable_gauge(
            "memlens.allocation_site.memory",
            [sites],
            unit="By",
            description="Live Python heap bytes of the largest allocation sites "
            "(tracemalloc exact, or sampler estimates).",
        )
    )
    add(
        meter.create_observable_gauge(
            "memlens.component.memory",
            [components],
            unit="By",
            description="Python heap bytes attributed to each registered component.",
        )
    )
    _remedy_instruments(meter, Observation, add)
    return out


_OTEL_UNITS = {"bytes": "By", "seconds": "s", "": "1"}


def _remedy_instruments(meter: Any, Observation: Any, add: Callable[[Any], None]) -> None:
    """``memlens.<kind>.<key>`` for the caches, pools and recovery ladder of memlens.remedies,
    with attribute ``memlens.<kind>`` naming each one (read from its registry on collection)."""
    from memlens.remedies import registry

    for kind, metrics in registry.METRICS.items():
        for m in metrics:

            def callback(options: Any, kind: str = kind, key: str = m.key) -> Iterable[Any]:
                return [
                    Observation(values[key], {f"memlens.{kind}": name})
                    for k, name, values in registry.snapshot()
                    if k == kind and key in values
                ]

            create = (
                meter.create_observable_counter
                if m.type == "counter"
                else meter.create_observable_gauge
            )
            add(
                create(
                    f"memlens.{kind}.{m.key}",
                    [callback],
                    unit=_OTEL_UNITS[m.unit],
                    description=m.help,
                )
            )
