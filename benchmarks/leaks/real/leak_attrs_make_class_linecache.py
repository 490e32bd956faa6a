"""attrs classes made per request: attrs registers each class's generated source in linecache."""

import attr

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_attrs_make_class_linecache.py#make",
    "root": "linecache",
}


def step(i: int) -> None:
    cls = attr.make_class(f"Row{i}", ["a", "b", "c"], slots=True, frozen=True)  # leak-site: make
    cls(1, 2, 3)
