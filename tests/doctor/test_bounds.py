"""Bounds read from the code that owns a holder, not from a list of known caches."""

from __future__ import annotations

import importlib.util
import linecache
import re
import sys
from types import ModuleType

from memlens.heap.doctor.bounds import module_bound


def _module(tmp_path, name: str, source: str) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[name]
    return mod


def test_a_module_that_evicts_once_full_is_bounded(tmp_path) -> None:
    mod = _module(
        tmp_path,
        "evicting_lib",
        "LIMIT = 100\n_seen = {}\n\n"
        "def remember(k, v):\n"
        "    if len(_seen) >= LIMIT:\n"
        "        _seen.pop(next(iter(_seen)))\n"
        "    _seen[k] = v\n",
    )
    for k in range(40):
        mod.remember(k, k)
    text = module_bound(mod, "_seen", mod._seen)
    assert text and "evicting_lib._seen" in text and "40 so far" in text


def test_a_test_on_another_name_or_without_eviction_is_no_bound(tmp_path) -> None:
    mod = _module(
        tmp_path,
        "keeping_lib",
        "_seen = {}\n_other = {}\n\n"
        "def remember(k, v):\n"
        "    if len(_seen) > 10:\n"
        "        print('big')\n"  # only a warning: nothing is let go
        "    if len(_other) > 10:\n"
        "        _other.clear()\n"
        "    _seen[k] = v\n",
    )
    assert module_bound(mod, "_seen", mod._seen) is None


def test_past_its_stated_bound_the_test_does_not_hold_it(tmp_path) -> None:
    mod = _module(
        tmp_path,
        "broken_lib",
        "LIMIT = 5\n_seen = {}\n\ndef trim():\n    if len(_seen) > LIMIT:\n        _seen.clear()\n",
    )
    mod._seen.update((k, k) for k in range(50))  # grown past it: trim() is never called
    assert module_bound(mod, "_seen", mod._seen) is None


def test_the_standard_library_read_as_it_is() -> None:
    # re evicts its pattern cache at _MAXCACHE; linecache keeps one entry per name it
    # was given (attrs and dataclass-like generators register a new one per class).
    assert module_bound(re, "_cache", re._cache)  # type: ignore[attr-defined]
    assert module_bound(linecache, "cache", linecache.cache) is None


def test_a_sized_object_with_no_container_above_it_is_a_collection() -> None:
    from memlens.heap.doctor.classify import is_collection

    class Table:
        def __len__(self) -> int:
            return 3

    class Snapshot:
        pass

    assert is_collection(Table()) and is_collection((1, 2))
    assert not is_collection(Snapshot()) and not is_collection("abc")


def test_the_native_lines_long_lived_collections_are_read_from_its_code(tmp_path) -> None:
    from memlens.heap.doctor.native_holder import candidates, find_holder

    mod = _module(
        tmp_path,
        "holder_case",
        "class Log:\n"
        "    def __init__(self):\n"
        "        self.entries = []\n"
        "        self.fixed = [0, 0]\n\n"
        "log = Log()\n"
        "names = ['a']\n\n"
        "def step(i):\n"
        "    names = ['local']\n"
        "    log.entries.append(names + [str(i)] + log.fixed)\n",
    )
    sys.modules["holder_case"] = mod
    try:
        site = (mod.__file__, 11)
        chains = [h.chain for h in candidates(site)]
        # the global ``names`` is shadowed by the local, and calls are not evaluated
        assert ("log", "entries") in chains and ("log", "fixed") in chains
        assert ("names",) not in chains
        holder = find_holder(site, mod.step, 0)
        assert holder is not None and holder.chain == ("log", "entries")
        assert holder.root == "module holder_case → global log → .entries"
    finally:
        del sys.modules["holder_case"]


def test_a_capacity_is_a_bound_only_where_the_class_evicts_at_it(tmp_path) -> None:
    import logging.handlers

    from memlens.heap.doctor.bounds import _enforces, capacity_attribute

    mod = _module(
        tmp_path,
        "capacity_lib",
        "class Culled:\n"
        "    def __init__(self):\n"
        "        self._max_entries = 300\n"
        "        self._cache = {}\n\n"
        "    def set(self, k, v):\n"
        "        if len(self._cache) >= self._max_entries:\n"
        "            self._cull()\n"
        "        self._cache[k] = v\n\n"
        "    def _cull(self):\n"
        "        self._cache.clear()\n\n\n"
        "class Warned:\n"
        "    def __init__(self):\n"
        "        self.capacity = 300\n"
        "        self.items = []\n\n"
        "    def add(self, x):\n"
        "        if len(self.items) >= self.capacity:\n"
        "            print('full')\n"
        "        self.items.append(x)\n",
    )
    culled, warned = mod.Culled(), mod.Warned()
    sys.modules["capacity_lib"] = mod  # where inspect finds the classes' source
    try:
        assert capacity_attribute(culled, [culled._cache])
        assert capacity_attribute(warned, [warned.items]) is None
    finally:
        del sys.modules["capacity_lib"]
    # logging's MemoryHandler compares its buffer with its capacity only to decide
    # when to flush, and its flush() clears the buffer only when there is a target.
    assert not _enforces(logging.handlers.MemoryHandler, "buffer", "capacity")
