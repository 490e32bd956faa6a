"""Deep dives in the service: /debug/objects, the breakdown in /debug/memory, gauges."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from memlens.core.config import Config
from memlens.heap import fragmentation
from memlens.service import Monitor
from tests.memlens_cli import memlens


class Cached:
    def __init__(self) -> None:
        self.blobs = [bytes(2000) for _ in range(3000)]


HELD = Cached()


def test_monitor_serves_census_breakdown_and_allocator_gauges(tmp_path: Path) -> None:
    mon = Monitor(Config(mode="production", persist_history=False)).start()
    try:
        url = mon.serve_http().url
        with urllib.request.urlopen(url + "/debug/memory", timeout=30) as response:
            memory = json.loads(response.read())
        breakdown = memory["memory_breakdown"]
        assert breakdown["rss"] > 0 and breakdown["verdict"]
        with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
            text = response.read().decode()
        if fragmentation.allocator_gauges():
            assert "memlens_malloc_in_use_bytes" in text
            assert "memlens_malloc_trimmable_bytes" in text
        out = memlens("objects", url, "--format", "json", "--top", "40", db=tmp_path / "m.db")
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
        held = [r for r in data["largest"] if r["type"].endswith("Cached")]
        assert held and held[0]["retained"] >= 3000 * 2000
        assert held[0]["path"][-1] == ".HELD"
    finally:
        mon.stop()
