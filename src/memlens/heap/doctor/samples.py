"""Sampling leaked objects: a few live objects per growing site, and where they sit.

The doctor needs real objects to walk back to their roots. These helpers find them
cheaply (C-level filters over ``gc.get_objects()``, newest entries first) within
bounded counts, so a big heap costs a bounded search and every run looks at the
same objects.
"""

from __future__ import annotations

import array
import collections
import functools
import gc
import operator
import sys
import weakref
from itertools import compress, repeat
from typing import Any

from memlens.heap.doctor import detect
from memlens.heap.doctor.checkpoints import SiteKey, type_counts
from memlens.heap.doctor.iterations import Engine
from memlens.heap.doctor.sites import object_frames
from memlens.heap.native_ext import load_extension

# The search is bounded by counts, not by time, so that a loaded machine looks at
# exactly the objects a quiet one does (a time box made the samples, and so the
# roots, depend on load).
MAX_HOLDERS = 20_000  # big collections looked into, growing ones first
MAX_INSTANCES = 50_000  # newest instances of grown types looked at
_PATIENCE = 2_000  # untraced instances in a row that end the search after a look
_ATOMS = frozenset({str, bytes, bytearray, int, complex})
_PLAIN = frozenset({dict, list, tuple, set, frozenset})
_LRU_WRAPPER = type(functools.lru_cache(maxsize=1)(len))


def collect_garbage() -> list[Any]:
    """Collect, and return what the GC found unreachable (kept alive, for sampling)."""
    start = len(gc.garbage)
    old = gc.get_debug()
    gc.set_debug(old | gc.DEBUG_SAVEALL)
    try:
        gc.collect()
    finally:
        gc.set_debug(old)
    found = gc.garbage[start:]
    del gc.garbage[start:]
    return found


def find_containers(ids: set[int]) -> dict[int, Any]:
    """The live GC-tracked objects with these ids (the containers seen growing)."""
    if not ids:
        return {}
    accel = load_extension("_census")
    objs = gc.get_objects()
    try:
        if accel is not None:
            # No int per object: id() under tracemalloc is a traced allocation.
            picked = accel.pick_by_address(objs, array.array("Q", sorted(ids)))
        else:
            picked = [obj for obj in objs if id(obj) in ids]
    finally:
        del objs
    return {id(obj): obj for obj in picked}


def sample_objects(
    engine: Engine, sites: set[SiteKey], containers: dict[int, Any], garbage: list[Any]
) -> dict[SiteKey, list[Any]]:
    """Up to N live objects allocated at each growing site, newest first."""
    want = engine.options.samples_per_site
    found: dict[SiteKey, list[Any]] = {s: [] for s in sites}
    if not sites:
        return found
    site_of = engine.reader.site_of
    rates = detect.type_rates(
        engine.reader.baseline_types,
        engine.final_types or type_counts(gc.get_objects()),
        engine.iterations - _first_iteration(engine),
    )
    # Instances of classes that grew; builtin containers and atoms are reached
    # through the big collections that hold them (below), which is far cheaper.
    grown = {name for name, r in rates.items() if r >= 0.2}
    remaining = set(sites)
    # A sample should look like what the site leaks: skip objects much smaller
    # than the site's average block (the subclass registry's int keys that
    # ``type()`` allocates next to the class it leaks, say).
    first, last = engine.checkpoints[0], engine.checkpoints[-1]
    smallest: dict[SiteKey, float] = {}
    for site in sites:
        grew = last.site_bytes.get(site, 0) - first.site_bytes.get(site, 0)
        blocks = last.site_blocks.get(site, 0) - first.site_blocks.get(site, 0)
        smallest[site] = 0.5 * grew / blocks if blocks > 0 and grew > 0 else 0.0

    def consider(obj: Any) -> bool:
        """Take ``obj`` as a sample if it fits; False when it has no traceback."""
        if issubclass(type(obj), weakref.ref):
            return True  # a weak reference retains nothing; its referent is the leak
        frames = object_frames(obj)
        if not frames:
            return False
        site = site_of(frames)
        if site in remaining and sys.getsizeof(obj, 0) >= smallest[site]:
            bucket = found[site]
            if all(o is not obj for o in bucket):
                bucket.append(obj)
                if len(bucket) >= want:
                    remaining.discard(site)
        return True

    for obj in garbage:
        if not remaining:
            break
        consider(obj)
    for obj in containers.values():
        for item in newest(obj, 50):
            if not remaining:
                break
            consider(item)
    for obj in engine.sampled_objects(remaining):  # a sampled run: its sites' blocks
        if not remaining:
            break
        consider(obj)
    objs = gc.get_objects()
    # The heap frozen at the start went back to the end of the oldest generation when
    # it was thawed; after a look, the objects with a traceback come before it.
    skip = engine.frozen.thawed if engine.watch_end else 0
    newest_first = objs[: len(objs) - skip] if skip else objs
    try:
        if remaining:
            # Leaked objects sit in big collections (tracked or not: a dict of
            # atoms is untracked); the newest entries are at the end.
            # Over the whole schedule: after a look, its own few calls are not what
            # the leaking collection has had time to fill.
            span = engine.checkpoints[-1].iteration - _first_iteration(engine)
            # A run stopped for memory pressure made only a few calls: what it
            # leaked fills only a few entries.
            need = max(3 if engine.dense else 8, span // 2)
            grown_ids = set(engine.checkpoints[-1].container_lens)
            holders = big_collections(objs, need, grown_ids)
            for holder in holders[:MAX_HOLDERS]:
                if not remaining:
                    break
                for item in newest(holder, 16):
                    consider(item)
                    if type(item) in _PLAIN and not gc.is_tracked(item):
                        for sub in newest(item, 8):
                            consider(sub)
        if remaining:
            # Instances held some other way (a linked chain, a bound method):
            # the newest objects of the types that grew. Survivors are appended
            # to the oldest generation, so the newest are at the end.
            grown_types = {t for t in set(map(type, objs)) if type_name_of(t) in grown}
            budget = MAX_INSTANCES
            # After an untraced watch only the look's objects have a traceback; they
            # are the newest survivors, so a long run of untraced ones means the
            # search has passed them.
            untraced, patience = 0, (_PATIENCE if engine.watch_end else MAX_INSTANCES)
            # The heap frozen at the start went back to the end of the oldest
            # generation when it was thawed: the look's objects come before it.
            for obj in reversed(newest_first):
                if not remaining or budget <= 0 or untraced >= patience:
                    break
                if type(obj) not in grown_types:
                    continue
                budget -= 1
                untraced = 0 if consider(obj) else untraced + 1
                untracked_below(obj, consider)
        span = max(1, last.iteration - first.iteration)
        swelling = {
            site
            for site in remaining
            if last.site_blocks.get(site, 0) - first.site_blocks.get(site, 0) < 0.5 * span
        }
        if swelling:
            # No more objects than before, yet more bytes: objects the site made
            # keep getting bigger (a DataFrame rebuilt with one more row per call,
            # a buffer extended in place). The biggest objects it allocated are it.
            for site, objs_at in biggest_at(newest_first, swelling, site_of, want).items():
                found[site].extend(o for o in objs_at if all(o is not x for x in found[site]))
    finally:
        del objs, newest_first
    return found


def big_collections(objs: list[Any], need: int, grew: set[int]) -> list[Any]:
    """Collections with at least ``need`` entries, tracked or held by tracked objects.

    Those seen growing come first, then untracked ones (the GC stopped tracking them
    because they hold only atoms, so their growth was not measured), then the rest.
    Filtering runs in C iterators: type membership, ``len``, ``gc.is_tracked``.
    """
    kinds = _PLAIN | {collections.deque}
    tracked = list(compress(objs, map(kinds.__contains__, map(type, objs))))
    big = list(compress(tracked, map(operator.le, repeat(need), map(len, tracked))))
    seen = set(map(id, big))
    is_growing = list(map(grew.__contains__, map(id, big)))
    out = list(compress(big, is_growing))
    rest = list(compress(big, map(operator.not_, is_growing)))
    refs = gc.get_referents(*objs)
    plain = list(compress(refs, map(_PLAIN.__contains__, map(type, refs))))
    untracked = list(compress(plain, map(operator.not_, map(gc.is_tracked, plain))))
    for obj in compress(untracked, map(operator.le, repeat(need), map(len, untracked))):
        if id(obj) not in seen:
            seen.add(id(obj))
            out.append(obj)
    out.extend(rest)
    # functools.lru_cache keeps bounded results in C links the GC cannot see into;
    # the wrapper itself reports them as its referents.
    wrappers = compress(objs, map(operator.is_, map(type, objs), repeat(_LRU_WRAPPER)))
    for obj in wrappers:
        try:
            size = obj.cache_info().currsize
        except Exception:  # noqa: BLE001
            continue
        if size >= need:
            out.insert(0, obj)
    return out


def type_name_of(t: type) -> str:
    """``module.Qualname`` (bare for builtins), as the type counts name types."""
    mod = t.__module__
    return t.__qualname__ if mod in ("builtins", None) else f"{mod}.{t.__qualname__}"


def holds_weakrefs(holder: Any) -> bool:
    """A collection of weak references: bookkeeping that follows a leak elsewhere."""
    items = newest(holder, 8)
    return bool(items) and all(issubclass(type(x), weakref.ref) for x in items)


def newest(holder: Any, n: int) -> list[Any]:
    """The last ``n`` entries (values and keys for a mapping)."""
    try:
        if issubclass(type(holder), dict):
            keys = list(holder)[-n:]
            return [holder[k] for k in keys] + keys
        if issubclass(type(holder), (set, frozenset)):
            return list(holder)[-n:]
        if type(holder).__name__ == "_lru_cache_wrapper":
            return gc.get_referents(holder)[-n:]
        return list(holder)[-n:]
    except Exception:  # noqa: BLE001 - mutated concurrently or odd subclass
        return []


def biggest_at(
    objs: list[Any], sites: set[SiteKey], site_of: Any, want: int, look: int = 2000
) -> dict[SiteKey, list[Any]]:
    """The ``want`` biggest (``sys.getsizeof``) objects allocated at each site, among
    the ``look`` biggest of the newest :data:`MAX_INSTANCES` tracked objects (sizes
    first: reading an object's traceback costs far more than its size)."""
    sized: list[tuple[int, int, Any]] = []
    for order, obj in enumerate(objs[: -MAX_INSTANCES - 1 : -1]):
        if type(obj) in _ATOMS or issubclass(type(obj), (type, weakref.ref)):
            continue
        try:
            sized.append((-sys.getsizeof(obj, 0), order, obj))
        except Exception:  # noqa: BLE001 - a __sizeof__ that fails
            continue
    sized.sort(key=lambda t: t[:2])
    picked: dict[SiteKey, list[Any]] = {}
    for _, _, obj in sized[:look]:
        frames = object_frames(obj)
        site = site_of(frames) if frames else None
        if site in sites and len(picked.setdefault(site, [])) < want:
            picked[site].append(obj)
    return picked


def untracked_below(obj: Any, consider: Any, depth: int = 3) -> None:
    """Offer what ``obj`` holds that the GC does not list: atoms, and plain containers
    the GC stopped tracking because they hold only atoms or untracked containers
    (``{"to": "…", "id": 7}`` inside a ``(payload,)`` args tuple), a few levels deep."""
    for ref in gc.get_referents(obj):
        kind = type(ref)
        if kind in _ATOMS:
            consider(ref)
        elif depth > 1 and kind in _PLAIN and not gc.is_tracked(ref):
            consider(ref)
            untracked_below(ref, consider, depth - 1)


def _first_iteration(engine: Engine) -> int:
    """The iteration of the schedule's first checkpoint (the watch's, after a look)."""
    first = engine.first_checkpoint
    return first.iteration if first is not None else 0
