import json
import math

from memlens.core.series import Series, TierSpec


def test_raw_ring_keeps_latest():
    s = Series(["rss"], raw_capacity=5)
    for t in range(12):
        s.append(float(t), {"rss": t * 10})
    assert len(s) == 5
    assert s.times() == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert s.column("rss") == [70.0, 80.0, 90.0, 100.0, 110.0]
    assert s.count == 12
    assert s.last().values == {"rss": 110.0}


def test_aggregates_min_mean_max_count():
    s = Series(["v"], raw_capacity=2, tiers=[TierSpec(10.0, 100.0)])
    for t in range(25):
        s.append(float(t), {"v": t})
    aggs = s.aggregates("v")
    assert [(a.start, a.min, a.max, a.count) for a in aggs] == [
        (0.0, 0, 9, 10),
        (10.0, 10, 19, 10),
        (20.0, 20, 24, 5),
    ]
    assert aggs[0].mean == 4.5


def test_new_fields_and_missing_values():
    s = Series()
    s.append(0.0, {"a": 1})
    s.append(1.0, {"a": 2, "b": 5})
    assert s.fields == ["a", "b"]
    assert math.isnan(s.column("b")[0])
    assert s.samples()[0].values == {"a": 1.0}
    assert s.aggregates("b")[0].min == 5


def test_points_merge_tiers_with_raw():
    s = Series(["v"], raw_capacity=10, tiers=[TierSpec(60.0, 3600.0)])
    for t in range(0, 600):
        s.append(float(t), {"v": t})
    pts = s.points("v")
    assert pts[-1].start == 599.0 and pts[-1].width == 0.0
    assert pts[0].width == 60.0 and pts[0].start == 0.0
    # No overlap between coarse windows and raw samples.
    coarse_end = max(p.start + p.width for p in pts if p.width)
    assert coarse_end <= min(p.start for p in pts if p.width == 0)


def test_round_trip_is_lossless():
    s = Series(raw_capacity=7)
    for t in range(100):
        values = {"rss": t * 1.5}
        if t % 3:
            values["uss"] = t
        s.append(t * 0.5, values)
    restored = Series.from_dict(json.loads(json.dumps(s.to_dict())))
    assert restored == s
    restored.append(1000.0, {"rss": 1.0})
    s.append(1000.0, {"rss": 1.0})
    assert restored == s


def test_thirty_days_at_one_hertz_stays_small():
    fields = [f"f{i}" for i in range(12)]
    s = Series(fields, raw_capacity=3600)
    day = 86_400
    # Simulate the shape: aggregates only grow to their capacity, so appending a
    # sparse walk over 30 days (one sample a minute) fills every tier fully.
    for t in range(0, 30 * day, 60):
        s.append(float(t), dict.fromkeys(fields, float(t)))
    for t in range(30 * day, 30 * day + 3600):
        s.append(float(t), dict.fromkeys(fields, float(t)))
    assert s.nbytes() < 5 * 1024 * 1024
