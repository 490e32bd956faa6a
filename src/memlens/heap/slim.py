"""Memory reductions with *measured* savings, on the live objects of this process.

Four patterns, each measured on the objects that are alive now, never a rule of thumb:

- **classes without ``__slots__``** that have many instances: a sample of instances is
  rebuilt twice, as the class is and as a slotted twin with the same attribute values,
  and the bytes per instance are measured with tracemalloc; the saving is the
  difference times the number of instances;
- **duplicate strings**: equal ``str`` objects kept separately; interning keeps one
  copy of each value (the saving is every other copy's size);
- **lists of numbers**: lists of only ints or only floats, against ``array('q')`` /
  ``array('d')`` holding the same values (element objects that something else
  also holds are not counted as saved);
- **many small dicts with the same keys**: against one slotted dataclass instance (or
  a tuple) per dict, measured like the slotted twin.

Each :class:`Recommendation` says where (the class, or the line that allocated a
sample, when tracemalloc traced it), how many objects, the bytes saved, and the code
change.
"""

from __future__ import annotations

import functools
import gc
import inspect
import os
import sys
import tracemalloc
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from memlens.heap.frames import is_user_file

MIN_INSTANCES = 1000
MIN_SAVING = 64 * 1024
SAMPLE = 2000


@dataclass
class Recommendation:
    """One reduction: what, where, how many, the measured saving and the change."""

    kind: str  # "slots" | "intern" | "array" | "dict-to-class"
    title: str
    where: str
    count: int
    bytes_now: int
    bytes_after: int
    change: str

    @property
    def saving(self) -> int:
        return max(0, self.bytes_now - self.bytes_after)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["saving"] = self.saving
        return out


def _traced_cost(build: Callable[[], list[Any]]) -> tuple[int, list[Any]]:
    """Bytes that ``build()`` allocates and keeps, measured with tracemalloc."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(1)
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        made = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        if started:
            tracemalloc.stop()
    return after - before, made


def _site(obj: Any) -> str:
    """The user line that allocated ``obj``, when tracemalloc traced it."""
    tb = tracemalloc.get_object_traceback(obj) if tracemalloc.is_tracing() else None
    if tb is None:
        return ""
    for frame in reversed(tb):
        if is_user_file(frame.filename):
            return f"{frame.filename}:{frame.lineno}"
    return ""


def _holder_name(obj: Any) -> str:
    """A name that holds ``obj`` (a dict key or attribute), when its site is unknown."""
    for ref in gc.get_referrers(obj):
        if type(ref) is dict:
            for k, v in ref.items():
                if v is obj and isinstance(k, str):
                    return f"the object held as {k!r}"
    return ""


def _class_where(cls: type) -> str:
    """``file:line`` of the class statement (from its methods when its module is gone)."""
    try:
        file = inspect.getsourcefile(cls) or ""
        line = inspect.getsourcelines(cls)[1]
        return f"{file}:{line}"
    except (OSError, TypeError):
        pass
    codes = [getattr(getattr(v, "__func__", v), "__code__", None) for v in list(vars(cls).values())]
    first = min((c for c in codes if c is not None), key=lambda c: c.co_firstlineno, default=None)
    if first is not None:
        return f"{first.co_filename}:{first.co_firstlineno} (class {cls.__qualname__})"
    return f"{cls.__module__}.{cls.__qualname__}"


def _slottable(cls: type) -> bool:
    if cls.__module__ == "builtins" or not hasattr(cls, "__dict__"):
        return False
    if "__slots__" in vars(cls):
        return False
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None) or ""
    if cls.__module__ != "__main__" and not (file and is_user_file(file)):
        return False
    # Base classes other than object must allow slots without a __dict__.
    return all(b is object or "__slots__" in vars(b) for b in cls.__mro__[1:])


def _rebuild(cls: type, samples: list[Any]) -> Callable[[], list[Any]]:
    def build() -> list[Any]:
        out = []
        for s in samples:
            obj: Any = object.__new__(cls)
            for k, v in vars(s).items():
                object.__setattr__(obj, k, v)
            out.append(obj)
        return out

    return build


def _twin(name: str, fields: tuple[str, ...]) -> type:
    return type(name + "Slotted", (object,), {"__slots__": fields})


def _rebuild_twin(twin: type, rows: list[dict[str, Any]]) -> Callable[[], list[Any]]:
    def build() -> list[Any]:
        out = []
        for row in rows:
            obj: Any = object.__new__(twin)
            for k, v in row.items():
                object.__setattr__(obj, k, v)
            out.append(obj)
        return out

    return build


def slots_recommendations(objects: Iterable[Any]) -> list[Recommendation]:
    """Classes with many ``__dict__`` instances, measured against a slotted twin."""
    by_class: dict[type, list[Any]] = defaultdict(list)
    for obj in objects:
        cls = type(obj)
        if cls.__flags__ & (1 << 9):  # Py_TPFLAGS_HEAPTYPE: a class from Python code
            by_class[cls].append(obj)
    out = []
    for cls, instances in by_class.items():
        if len(instances) < MIN_INSTANCES or not _slottable(cls):
            continue
        samples = instances[:SAMPLE]
        # Reading vars() of a sample creates its __dict__ (3.11+ keeps attributes
        # inline until asked): measure copies instead of the originals.
        rows = [dict(vars(s)) for s in samples]
        fields = tuple(dict.fromkeys(k for row in rows for k in row))
        if not fields or not all(isinstance(k, str) and k.isidentifier() for k in fields):
            continue
        now, made = _traced_cost(_rebuild(cls, samples))
        del made
        twin = _twin(cls.__name__, fields)
        after, made = _traced_cost(_rebuild_twin(twin, rows))
        del made
        n = len(instances)
        scale = n / len(samples)
        rec = Recommendation(
            kind="slots",
            title=f"{n:,} {cls.__qualname__} instances without __slots__",
            where=_class_where(cls),
            count=n,
            bytes_now=int(now * scale),
            bytes_after=int(after * scale),
            change=f"class {cls.__qualname__}:\n    __slots__ = {fields!r}",
        )
        if rec.saving >= MIN_SAVING:
            out.append(rec)
    return out


def intern_recommendation(strings: Iterable[str]) -> Recommendation | None:
    """Equal strings stored as separate objects: what interning each value saves."""
    groups: dict[str, list[str]] = defaultdict(list)
    seen: set[int] = set()
    for s in strings:
        if id(s) not in seen:
            seen.add(id(s))
            groups[s].append(s)
    dup_bytes = 0
    dup_objects = 0
    total = 0
    worst: list[tuple[int, str]] = []
    for value, copies in groups.items():
        size = sys.getsizeof(value)
        total += size * len(copies)
        if len(copies) > 1:
            dup_bytes += size * (len(copies) - 1)
            dup_objects += len(copies) - 1
            worst.append((size * (len(copies) - 1), value))
    if dup_bytes < MIN_SAVING:
        return None
    worst.sort(reverse=True)
    sample = groups[worst[0][1]][0]
    site = _site(sample)
    shown = ", ".join(repr(v[:30]) for _, v in worst[:3])
    return Recommendation(
        kind="intern",
        title=f"{dup_objects:,} duplicate strings ({len(worst):,} values, e.g. {shown})",
        where=site or "where the strings are made",
        count=dup_objects,
        bytes_now=total,
        bytes_after=total - dup_bytes,
        change="value = sys.intern(value)  # where the repeated strings are created"
        + (f" ({site})" if site else ""),
    )


def _number_list(obj: Any) -> str | None:
    if type(obj) is not list or len(obj) < MIN_INSTANCES:
        return None
    first = type(obj[0])
    if first not in (int, float) or first is bool:
        return None
    if all(type(x) is first for x in obj):
        return "q" if first is int else "d"
    return None


def array_recommendations(objects: Iterable[Any]) -> list[Recommendation]:
    """Lists holding only ints or only floats, against an ``array`` of the same values."""
    out: list[Recommendation] = []
    total_now = total_after = count = 0
    where = ""
    biggest = 0
    kinds: set[str] = set()
    for obj in objects:
        code = _number_list(obj)
        if code is None:
            continue
        if code == "q" and not all(-(2**63) <= x < 2**63 for x in obj):
            continue
        # An element also held elsewhere (or a cached small int) is not freed.
        own = sum(sys.getsizeof(x) for x in obj if sys.getrefcount(x) <= 3)
        now = sys.getsizeof(obj) + own
        after = sys.getsizeof(array(code, obj))
        if now - after <= 0:
            continue
        total_now += now
        total_after += after
        count += 1
        kinds.add(code)
        if now > biggest:
            biggest = now
            where = _site(obj) or _holder_name(obj)
    if total_now - total_after < MIN_SAVING:
        return out
    typename = " and ".join("int" if k == "q" else "float" for k in sorted(kinds))
    out.append(
        Recommendation(
            kind="array",
            title=f"{count:,} lists of {typename} numbers",
            where=where or "where the lists are built",
            count=count,
            bytes_now=total_now,
            bytes_after=total_after,
            change="from array import array\nvalues = array('d', values)  # 'q' for ints;"
            " or numpy.array(values) for arithmetic on them",
        )
    )
    return out


def _copy_dicts(dicts: list[dict[str, Any]]) -> list[Any]:
    return [dict(d) for d in dicts]


def dict_recommendations(objects: Iterable[Any], owned: set[int]) -> list[Recommendation]:
    """Many small dicts with the same keys, against a slotted class with those fields."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for obj in objects:
        if type(obj) is dict and 0 < len(obj) <= 12 and id(obj) not in owned:
            keys = tuple(obj)
            if all(type(k) is str and k.isidentifier() for k in keys):
                groups[keys].append(obj)
    out = []
    for keys, dicts in groups.items():
        if len(dicts) < MIN_INSTANCES:
            continue
        samples = dicts[:SAMPLE]
        now, made = _traced_cost(functools.partial(_copy_dicts, samples))
        del made
        twin = _twin("Record", keys)
        after, made = _traced_cost(_rebuild_twin(twin, samples))
        del made
        scale = len(dicts) / len(samples)
        fields = "\n".join(f"    {k}: object" for k in keys)
        rec = Recommendation(
            kind="dict-to-class",
            title=f"{len(dicts):,} dicts with the same keys {keys!r}",
            where=_site(dicts[0]) or _site(dicts[-1]) or "where the dicts are built",
            count=len(dicts),
            bytes_now=int(now * scale),
            bytes_after=int(after * scale),
            change="@dataclass(slots=True)  # Python 3.10+; or a NamedTuple / tuple\n"
            f"class Record:\n{fields}",
        )
        if rec.saving >= MIN_SAVING:
            out.append(rec)
    return out


def _instance_dicts(objects: list[Any]) -> set[int]:
    """Ids of dicts that are some object's ``__dict__`` (not free-standing records)."""
    owned: set[int] = set()
    for obj in objects:
        if type(obj).__flags__ & (1 << 9):
            for ref in gc.get_referents(obj):
                if type(ref) is dict:
                    owned.add(id(ref))
    for module in list(sys.modules.values()):
        owned.add(id(getattr(module, "__dict__", None)))
    return owned


def _referents(objects: list[Any], batch: int = 50_000) -> list[Any]:
    """Everything ``objects`` refer to (one C call per batch)."""
    out: list[Any] = []
    for i in range(0, len(objects), batch):
        out.extend(gc.get_referents(*objects[i : i + batch]))
    return out


def recommend(exclude: Iterable[Any] = ()) -> list[Recommendation]:
    """Every recommendation for the live heap of this process, biggest saving first."""
    skip = {id(x) for x in exclude}
    gc.collect()
    objects = [o for o in gc.get_objects() if id(o) not in skip]
    skip.add(id(objects))
    refs = _referents(objects)
    # Strings, and dicts that hold only atoms, are not tracked by the GC: they are
    # found through what refers to them.
    strings = [r for r in refs if type(r) is str and len(r) >= 8]
    untracked = {id(r): r for r in refs if type(r) is dict and not gc.is_tracked(r)}
    del refs
    recs: list[Recommendation] = []
    recs += slots_recommendations(objects)
    rec = intern_recommendation(strings)
    del strings
    if rec is not None:
        recs.append(rec)
    recs += array_recommendations(objects)
    dicts = [o for o in objects if type(o) is dict] + list(untracked.values())
    recs += dict_recommendations(dicts, _instance_dicts(objects))
    del objects, dicts, untracked
    recs.sort(key=lambda r: r.saving, reverse=True)
    return recs


def slim_target(target: str, argv: list[str] | None = None) -> dict[str, Any]:
    """Run a script or ``module:function`` (tracing allocations), then recommend.

    The script's globals (or the function's return value) stay alive for the
    analysis, as they would in the running program.
    """
    import runpy

    from memlens.core.errors import TargetError
    from memlens.heap.doctor.targets import resolve

    kept: list[Any] = []
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(8)  # enough frames to reach the user's line; cheaper than 16
    error = None
    try:
        if target.endswith(".py") or os.path.isfile(target):
            path = os.path.abspath(target)
            if not os.path.isfile(path):
                raise TargetError(f"script not found: {target}")
            saved = sys.argv[:]
            sys.argv = [path, *(argv or [])]
            sys.path.insert(0, os.path.dirname(path))
            try:
                kept.append(runpy.run_path(path, run_name="__main__"))
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    error = f"SystemExit: {exc.code}"
            except Exception as exc:  # noqa: BLE001 - reported, the heap is still analysed
                error = f"{type(exc).__name__}: {exc}"
            finally:
                sys.argv = saved
                sys.path.remove(os.path.dirname(path))
        else:
            fn, _root = resolve(target)
            if not callable(fn):
                raise TargetError(f"{target} is not callable")
            try:
                kept.append(fn())
            except Exception as exc:  # noqa: BLE001
                error = f"{type(exc).__name__}: {exc}"
        recs = recommend(exclude=[kept])
    finally:
        if started:
            tracemalloc.stop()
    return {
        "target": target,
        "error": error,
        "recommendations": [r.to_dict() for r in recs],
        "saving": sum(r.saving for r in recs),
        "kept": len(kept),
    }
