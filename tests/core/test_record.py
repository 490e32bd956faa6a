"""``memlens.core.record``: the value classes of the always-on path behave as the
dataclasses they replaced (issue #15)."""

from __future__ import annotations

import copy
import pickle
from typing import ClassVar

import pytest

from memlens.core.config import Config
from memlens.core.record import (
    FrozenRecordError,
    asdict,
    field,
    fields,
    is_record,
    record,
    replace,
)
from memlens.core.session import AllocationSite, Metadata, Session
from memlens.service.events import LeakSuspected, MonitorEvent


@record(frozen=True)
class Point:
    """A frozen record."""

    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "point"


@record
class Box:
    """A mutable record holding records."""

    corner: Point
    items: list[Point] = field(default_factory=list)
    seen: int = 0

    def __post_init__(self) -> None:
        self.seen += 1


def test_init_defaults_factories_and_errors() -> None:
    a, b = Point(1), Point(2, 3)
    assert (a.x, a.y, b.y) == (1, 0, 3)
    assert a.tags == [] and a.tags is not b.tags  # a fresh list per instance
    assert fields(Point) == ("x", "y", "tags")  # ClassVar is not a field
    assert Point.kind == "point"
    with pytest.raises(TypeError):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Point(1, z=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="without a default"):

        @record
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_repr_eq_hash_and_frozen() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=[])"
    assert Point(1) == Point(1) and Point(1) != Point(2)
    assert Point(1) != (1, 0, [])  # another class is never equal
    frozen = Point(1, 2, ())  # type: ignore[arg-type]
    assert hash(frozen) == hash(Point(1, 2, ()))  # type: ignore[arg-type]
    with pytest.raises(FrozenRecordError):
        frozen.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):  # FrozenRecordError is an AttributeError
        del frozen.y  # type: ignore[misc]
    box = Box(Point(0))
    box.seen = 7  # mutable
    with pytest.raises(TypeError):
        hash(box)  # mutable records are unhashable, as dataclasses are


def test_post_init_asdict_replace_copy_pickle() -> None:
    box = Box(Point(1, tags=["a"]), [Point(2)])
    assert box.seen == 1
    data = asdict(box)
    assert data == {
        "corner": {"x": 1, "y": 0, "tags": ["a"]},
        "items": [{"x": 2, "y": 0, "tags": []}],
        "seen": 1,
    }
    data["corner"]["tags"].append("b")
    assert box.corner.tags == ["a"]  # asdict copied the list
    moved = replace(box.corner, x=9)
    assert moved == Point(9, 0, ["a"]) and box.corner.x == 1
    assert replace(box, seen=0).seen == 1  # __post_init__ ran again
    assert copy.deepcopy(box) == box
    assert pickle.loads(pickle.dumps(Point(4, 5))) == Point(4, 5)
    assert vars(Point(1))["x"] == 1
    assert is_record(box) and not is_record(Box) and not is_record({})
    with pytest.raises(TypeError):
        fields(object())


def test_inherited_fields_come_first() -> None:
    event = LeakSuspected(1.0, "id", "heap", 0.5, "look")
    assert fields(event)[:2] == ("time", "leak_id")
    assert isinstance(event, MonitorEvent)
    assert event.to_dict() == {
        "time": 1.0,
        "leak_id": "id",
        "component": "heap",
        "growth_rate_mb_per_min": 0.5,
        "recommendation": "look",
        "leak": {},
        "event": "LeakSuspected",
    }


def test_memlens_records_round_trip() -> None:
    cfg = Config(mode="production")
    assert cfg.replace(level="high") == Config(mode="production", level="high")
    with pytest.raises(AttributeError):
        cfg.mode = "debug"  # type: ignore[misc]
    session = Session(name="s", top_sites=[AllocationSite("a.py", 3, size=10)])
    again = Session.from_dict(session.to_dict())
    assert again.top_sites == session.top_sites
    assert again.metadata == session.metadata
    assert isinstance(again.metadata, Metadata)


def test_the_dataclasses_functions_work_on_records() -> None:
    # Code written for the dataclasses these classes were (the profiler's peak sites,
    # a user's own asdict/replace) keeps working.
    import dataclasses

    site = AllocationSite("a.py", 2, stack=["a.py:2 in f"])
    assert dataclasses.is_dataclass(site) and dataclasses.is_dataclass(AllocationSite)
    assert dataclasses.asdict(site) == asdict(site)
    assert dataclasses.replace(site, lineno=5) == AllocationSite("a.py", 5, stack=site.stack)
    assert [f.name for f in dataclasses.fields(Config)] == list(fields(Config))
    assert dataclasses.replace(Config(), mode="production") == Config(mode="production")
    event = LeakSuspected(1.0, "id", "heap", 0.5, "look")
    assert [f.name for f in dataclasses.fields(event)][:2] == ["time", "leak_id"]
    point = dataclasses.replace(Point(1, tags=["a"]), y=4)
    assert point == Point(1, 4, ["a"])
    assert dataclasses.fields(Point)[2].default_factory() == []  # type: ignore[misc]
