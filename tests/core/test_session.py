import json

import pytest

from memlens.core.session import AllocationSite, ComponentUsage, GcGenerationStats, Session


def test_session_round_trip():
    s = Session("demo", description="d", kind="run", status="failed", error="ValueError: x")
    for t in range(20):
        s.series.append(t * 0.1, {"rss": 1000 + t, "traced": t})
    s.top_sites = [AllocationSite("a.py", 3, "f", 10, 1, 10, 1, "core", ["a.py:3 in f"])]
    s.gc = [GcGenerationStats(0, 5, 10, 0, 0.01, 0.005, {"0.001": 5})]
    s.components = [ComponentUsage("core", 10, 20, 5, 1)]
    s.analyses["doctor"] = {"verdict": "leak"}
    text = s.to_json()
    json.loads(text)
    assert Session.from_json(text) == s


def test_newer_schema_is_refused():
    data = Session("x").to_dict()
    data["schema"] = 999
    with pytest.raises(ValueError, match="newer"):
        Session.from_dict(data)
