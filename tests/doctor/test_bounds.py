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
        "LIMIT = 5\n_seen = {}\n\n"
        "def trim():\n"
        "    if len(_seen) > LIMIT:\n"
        "        _seen.clear()\n",
    )
    mod._seen.update((k, k) for k in range(50))  # grown past it: trim() is never called
    assert module_bound(mod, "_seen", mod._seen) is None


def test_the_standard_library_read_as_it_is() -> None:
    # re evicts its pattern cache at _MAXCACHE; linecache keeps one entry per name it
    # was given (attrs and dataclass-like generators register a new one per class).
    assert module_bound(re, "_cache", re._cache)  # type: ignore[attr-defined]
    assert module_bound(linecache, "cache", linecache.cache) is None


def test_a_sized_object_with_no_container_above_it_is_a_collection() -> None:
    from memlens.heap.doctor.classify import _is_collection

    class Table:
        def __len__(self) -> int:
            return 3

    class Snapshot:
        pass

    assert _is_collection(Table()) and _is_collection((1, 2))
    assert not _is_collection(Snapshot()) and not _is_collection("abc")
