"""Multiprocess Prometheus export: the same families and types as one process, only what
was measured, scraped over real HTTP from real forked workers and a real multiprocess
directory (prometheus_client's ``MultiProcessCollector`` behind its own HTTP server)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import pytest

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

# A pre-fork service: the parent builds the monitor, three workers fork from it, each
# works and samples, the parent marks the first worker dead (gunicorn's child_exit),
# then serves the scrape until the test closes its stdin.
APP = textwrap.dedent(
    """
    import gc, json, os, sys
    from memlens.core.clock import ManualClock
    from memlens.core.config import Config
    from memlens.service import Monitor

    gc.disable()  # collections happen only where this script says, so totals are known
    mode, how, out = sys.argv[1], sys.argv[2], sys.argv[3]
    here = os.path.dirname(os.path.abspath(__file__))
    clock = ManualClock()
    mon = Monitor(
        Config(mode=mode, persist_history=False, components={"app": here}), clock=clock
    )
    keep = []

    def work():
        keep.append([bytearray(1000) for _ in range(3000)])
        gc.collect()

    def sample_twice():
        mon.sample_now()  # a forked child's first snapshot is deferred by one interval
        clock.advance(61)
        mon.sample_now()
        with open(os.path.join(out, f"gc-{os.getpid()}.json"), "w") as f:
            json.dump({g.generation: g.collections for g in mon.gc_stats()}, f)

    kids = []
    if how == "multi":
        from memlens.service.prometheus import MultiprocessExporter, mark_process_dead

        MultiprocessExporter(mon)
        mon.start(thread=False)
        for _ in range(3):
            pid = os.fork()
            if pid == 0:
                work()
                sample_twice()
                os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.waitpid(pid, 0)
        mark_process_dead(kids[0])
        work()
        sample_twice()
        from prometheus_client import CollectorRegistry, start_http_server
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
        port = server.server_address[1]
    else:
        mon.start(thread=False)
        work()
        sample_twice()
        port = mon.serve_http("127.0.0.1", 0).port
    print(json.dumps({"port": port, "pid": os.getpid(), "kids": kids}), flush=True)
    sys.stdin.read()
    """
)


def scrape(tmp_path: Path, mode: str, how: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the app in ``mode``/``how``; returns (its info, the parsed families)."""
    work = tmp_path / f"{mode}-{how}"
    (work / "prom").mkdir(parents=True)
    app = work / "app.py"
    app.write_text(APP)
    env = {**__import__("os").environ, "PROMETHEUS_MULTIPROC_DIR": str(work / "prom")}
    proc = subprocess.Popen(
        [sys.executable, str(app), mode, how, str(work)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        info = json.loads(line)
        url = f"http://127.0.0.1:{info['port']}/metrics"
        with urllib.request.urlopen(url, timeout=30) as resp:
            text = resp.read().decode()
    finally:
        proc.communicate(timeout=60)
    gc_totals: dict[str, int] = {}
    for f in work.glob("gc-*.json"):
        for gen, n in json.loads(f.read_text()).items():
            gc_totals[gen] = gc_totals.get(gen, 0) + n
    info["gc"] = gc_totals
    return info, {f.name: f for f in text_string_to_metric_families(text)}


def shape(families: dict[str, Any]) -> dict[str, str]:
    return {name: fam.type for name, fam in families.items()}


def value(fam: Any, name: str, **labels: str) -> float:
    for s in fam.samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise AssertionError(f"no sample {name} {labels} in {fam.name}")


@pytest.mark.parametrize("mode", ["production", "debug"])
def test_multiprocess_export_has_the_families_and_types_of_one_process(
    tmp_path: Path, mode: str
) -> None:
    single_info, single = scrape(tmp_path, mode, "single")
    multi_info, multi = scrape(tmp_path, mode, "multi")
    assert shape(multi) == shape(single)
    assert multi["memlens_gc_pause_seconds"].type == "histogram"

    # Gauges: one series per live process (the worker marked dead is gone).
    live = {str(multi_info["pid"]), *map(str, multi_info["kids"][1:])}
    rss = multi["memlens_resident_memory_bytes"]
    assert {s.labels["pid"] for s in rss.samples} == live
    assert all(s.value > 0 for s in rss.samples)

    # Counters and histograms: summed over every process, the dead worker included.
    for gen, total in multi_info["gc"].items():
        got = value(multi["memlens_gc_collections"], "memlens_gc_collections_total", generation=gen)
        assert got == total
        pauses = multi["memlens_gc_pause_seconds"]
        assert value(pauses, "memlens_gc_pause_seconds_count", generation=gen) == total
        assert value(pauses, "memlens_gc_pause_seconds_bucket", generation=gen, le="+Inf") == total
    assert multi_info["gc"]["2"] == 4  # one work() per process
    assert single_info["gc"]["2"] == 1

    measured = {"production": set(), "debug": {"uss", "pss", "traced", "component", "site"}}[mode]
    optional = {
        "uss": "memlens_unique_memory_bytes",
        "pss": "memlens_proportional_memory_bytes",
        "traced": "memlens_python_traced_bytes",
        "component": "memlens_component_memory_bytes",
        "site": "memlens_allocation_site_bytes",
    }
    for key, name in optional.items():
        # Never measured means never exported (it used to be 0.0 for every pid).
        assert (name in multi) == (key in measured), name
    if mode == "debug":
        for key in ("uss", "pss", "traced"):
            fam = multi[optional[key]]
            assert {s.labels["pid"] for s in fam.samples} == live
            assert all(s.value > 0 for s in fam.samples)
        app = multi["memlens_component_memory_bytes"]
        assert all(s.value >= 3000 * 1000 for s in app.samples if s.labels["component"] == "app")
        sites = multi["memlens_allocation_site_bytes"]
        line = APP.splitlines().index("    keep.append([bytearray(1000) for _ in range(3000)])") + 1
        assert any(s.labels["site"].endswith(f"app.py:{line}") for s in sites.samples)


def test_a_series_that_ended_is_gone_from_the_next_scrape(tmp_path: Path) -> None:
    """Values change in place while the series stay the same; a series that ended (a
    site that left the top list) disappears instead of repeating its last value."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from memlens.service.metrics import Family
    from memlens.service.prometheus import PidFiles

    def sites(**sizes: float) -> list[Family]:
        fam = Family("memlens_allocation_site_bytes", "gauge", "Live bytes per site.")
        for site, size in sizes.items():
            fam.add(size, {"site": site})
        return [fam]

    def scrape() -> dict[str, float]:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(tmp_path))
        (fam,) = text_string_to_metric_families(generate_latest(registry).decode())
        return {s.labels["site"]: s.value for s in fam.samples}

    files = PidFiles(str(tmp_path), 4242)
    try:
        files.write(sites(a=1.0, b=2.0))
        assert scrape() == {"a": 1.0, "b": 2.0}
        files.write(sites(a=5.0, b=6.0))
        assert scrape() == {"a": 5.0, "b": 6.0}
        files.write(sites(a=7.0))
        assert scrape() == {"a": 7.0}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["gauge_livememlens_4242.db"]
    finally:
        files.close()
