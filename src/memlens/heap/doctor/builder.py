"""From growth signals to findings: retention, grouping, category, bound and price.

Given the growing signals of a finished run, it samples leaked objects, builds the
reverse reference graph once, walks each sample to its named root, groups sites
that share a root into one finding, and classifies and prices each finding.
"""

from __future__ import annotations

import collections
import gc
import os
import sys
import types
from dataclasses import dataclass
from typing import Any

from memlens.heap.doctor import detect
from memlens.heap.doctor.bounds import capacity_attribute, explicit_bound, library_bound
from memlens.heap.doctor.checkpoints import SiteKey, type_name
from memlens.heap.doctor.classify import WHY, Evidence, classify, holder_index, holder_name
from memlens.heap.doctor.cycles import cycle_hops
from memlens.heap.doctor.diagnosis import Finding, Hop, Remedy
from memlens.heap.doctor.graph import ReverseGraph
from memlens.heap.doctor.iterations import Engine
from memlens.heap.doctor.library import public_call
from memlens.heap.doctor.native_site import Attribution
from memlens.heap.doctor.release import release_call
from memlens.heap.doctor.remedies import remedies
from memlens.heap.doctor.retention import Path, Roots, find_path
from memlens.heap.doctor.samples import (
    collect_garbage,
    find_containers,
    holds_weakrefs,
    sample_objects,
)
from memlens.heap.doctor.sites import (
    Frame,
    function_at,
    object_frames,
    short_path,
    source_line,
    user_stack,
)
from memlens.heap.fragmentation import native_growth_verdict

_MEMLENS_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FindingBuilder:
    """Turns the growing signals of one run into findings (see ``analyze.diagnose``)."""

    def __init__(
        self, engine: Engine, growing: list[detect.Signal], native_site: Attribution | None
    ) -> None:
        self.engine = engine
        self.cps = engine.checkpoints
        self.reader = engine.reader
        self.growing = growing
        self.native_site = native_site
        self.opts = engine.options
        self.span = max(1, self.cps[-1].iteration - self.cps[0].iteration)
        self.bounded: dict[int, str] = {}  # id(finding) -> why it is a bounded cache
        self.user_bound: dict[int, str] = {}
        self.garbage_by_site: dict[SiteKey, list[Any]] = {}
        self.garbage: list[Any] = []
        self._graph: ReverseGraph | None = None  # while findings are built
        self.made: dict[int, Made] = {}  # id(finding) -> who made its main site's objects
        # Findings whose retaining path passes through a container seen growing.
        self.through_growing: set[int] = set()

    # -- main ----------------------------------------------------------------------
    def build(self) -> list[Finding]:
        site_signals: dict[SiteKey, detect.Signal] = {
            s.key: s for s in self.growing if s.kind == "site" and isinstance(s.key, tuple)
        }
        container_signals: dict[int, detect.Signal] = {
            s.key: s for s in self.growing if s.kind == "container" and isinstance(s.key, int)
        }
        garbage_signal = next((s for s in self.growing if s.kind == "garbage"), None)
        native_signal = next((s for s in self.growing if s.kind == "native"), None)
        atexit_signal = next((s for s in self.growing if s.kind == "atexit"), None)

        garbage: list[Any] = collect_garbage() if garbage_signal else []
        self.garbage = garbage
        garbage_ids = {id(o) for o in garbage}
        containers = find_containers(set(container_signals))
        samples = sample_objects(
            self.engine, set(site_signals), containers, garbage
        )  # site -> objects
        # Cycle members per site, for describing the cycles (needs tracing).
        for obj in garbage:
            if gc.is_tracked(obj):
                where = self._site(obj)
                if where is not None:
                    bucket = self.garbage_by_site.setdefault(where, [])
                    if len(bucket) < 5:
                        bucket.append(obj)
        # Tracing is no longer needed (samples are chosen); stopping it makes the
        # graph walk several times faster.
        self.engine.end()
        keep: list[Any] = [garbage, containers, samples]
        targets = [o for objs in samples.values() for o in objs] + list(containers.values())
        ignore = {id(keep), id(targets), id(samples), id(containers), id(garbage)}
        ignore.update(id(v) for v in samples.values())
        ignore.update(self._own_frames())
        ignore.update(self.engine.own)
        graph = ReverseGraph(targets, ignore)
        self._graph = graph
        try:
            roots = Roots(graph, ignore, self.engine.contexts)
            growing_ids = frozenset(container_signals)
            findings = self._site_findings(
                site_signals, samples, graph, roots, garbage_ids, growing_ids, atexit_signal
            )
            covered = {id(o) for f in findings for o in f[1].objects} if findings else set()
            for cid, sig in container_signals.items():
                obj = containers.get(cid)
                if obj is None or cid in covered or holds_weakrefs(obj):
                    continue
                path = find_path(obj, graph, roots)
                if not path.found:
                    continue
                covered.update(id(o) for o in path.objects)
                findings.append(self._container_finding(sig, obj, path, growing_ids))
        finally:
            self._graph = None
            graph.close()
        out = [f for f, _ in findings]
        if garbage_signal and not any(f.category == "gc_disabled_cycles" for f in out):
            out.append(self._garbage_finding(garbage_signal, garbage))
        if native_signal and not out or native_signal:
            out.append(self._native_finding(native_signal))
        if atexit_signal and not any(f.root == "atexit registry" for f in out):
            out.append(self._atexit_finding(atexit_signal))
        del keep, garbage, samples, containers, targets
        out.sort(key=lambda f: -f.bytes_per_iteration)
        return dedupe(out)

    def lead(self, members: list[Finding]) -> int:
        """For ``grouping.group``: which of one retainer's findings leads (see
        :func:`payload_index`)."""
        return payload_index([self.made.get(id(f), _NOBODY) for f in members])

    def _own_frames(self) -> set[int]:
        out: set[int] = set()
        for frame in sys._current_frames().values():
            f: types.FrameType | None = frame
            while f is not None:
                if os.path.realpath(f.f_code.co_filename).startswith(_MEMLENS_DIR + os.sep):
                    out.add(id(f))
                f = f.f_back
        return out

    # -- findings ------------------------------------------------------------------
    def _site_findings(
        self,
        site_signals: dict[SiteKey, detect.Signal],
        samples: dict[SiteKey, list[Any]],
        graph: ReverseGraph,
        roots: Roots,
        garbage_ids: set[int],
        growing_ids: frozenset[int],
        atexit_signal: detect.Signal | None,
    ) -> list[tuple[Finding, Path]]:
        groups: dict[str, list[tuple[SiteKey, detect.Signal, Path | None, bool]]] = {}
        for site, sig in site_signals.items():
            best: Path | None = None
            in_garbage = False
            by_root: dict[str, list[Path]] = {}
            for obj in samples.get(site, []):
                if id(obj) in garbage_ids:
                    in_garbage = True
                    continue
                path = find_path(obj, graph, roots)
                if path.found:
                    by_root.setdefault(path.root, []).append(path)
            if by_root:
                root = max(by_root, key=lambda r: len(by_root[r]))
                best = min(by_root[root], key=lambda p: len(p.hops))
                group_key = root
            elif in_garbage:
                group_key = "<unreachable cycles>"
            elif atexit_signal is not None:
                group_key = "atexit registry"
            else:
                group_key = f"<unattributed {site[0]}:{site[1]}>"
            groups.setdefault(group_key, []).append((site, sig, best, in_garbage))
        # Sites with no sample (a dict's table, a list's array) join the group whose
        # sites share their function; otherwise they stay on their own.
        out: list[tuple[Finding, Path]] = []
        orphans = {k: v for k, v in groups.items() if k.startswith("<unattributed")}
        for k in orphans:
            members = groups[k]
            site = members[0][0]
            fn = (site[0], function_at(*site))
            for gk, gm in groups.items():
                if gk.startswith("<unattributed"):
                    continue
                if any((m[0][0], function_at(*m[0])) == fn for m in gm):
                    gm.extend(members)
                    del groups[k]
                    break
        for gk, members in groups.items():
            members.sort(key=lambda m: -m[1].growth.rate)
            made = [self._traits(m[0], samples.get(m[0], []), m[2]) for m in members]
            payload = payload_index(made)
            if payload:
                members.insert(0, members.pop(payload))
                made.insert(0, made.pop(payload))
            site, sig, first_path, in_garbage = members[0]
            chosen = next((m[2] for m in members if m[2] is not None), first_path)
            rate = sum(m[1].growth.rate for m in members)
            frames = self.reader.site_frames.get(site, (site,))
            ev = Evidence(
                path=chosen,
                in_garbage=any(m[3] for m in members),
                atexit=gk == "atexit registry",
                growing_ids=growing_ids,
                frames=self._user_frames(frames),
                library_owned=self._library_owned(chosen, growing_ids),
            )
            category = classify(ev)
            finding = self._finding(category, site, frames, rate, sig, chosen)
            if gk == "<unreachable cycles>" or ev.in_garbage:
                finding.root = "unreachable reference cycle (gc disabled)"
                finding.path = cycle_hops(self._cycle_starts(site, samples.get(site, [])))
            elif gk == "atexit registry" and chosen is None:
                finding.root = "atexit registry"
            finding.related_sites = [f"{short_path(m[0][0])}:{m[0][1]}" for m in members[1:]]
            finding.samples = sum(len(samples.get(m[0], [])) for m in members)
            self.made[id(finding)] = made[0]
            if chosen is not None and any(id(o) in growing_ids for o in chosen.objects):
                self.through_growing.add(id(finding))
            out.append((finding, chosen or Path(root="", root_kind="none")))
        return out

    def _traits(self, site: SiteKey, samples: list[Any], path: Path | None) -> Made:
        """Who made a site's objects, and what its path goes through (see ``Made``)."""
        frames = self.reader.site_frames.get(site, (site,))
        by_user = bool(frames) and self.reader.code.is_user(frames[0][0])
        own = frozenset(type(o) for o in samples if type(o).__module__ not in _PLAIN_MODULES)
        through = frozenset(type(o) for o in path.objects[:-1]) if path is not None else frozenset()
        return Made(by_user, own, through)

    def _finding(
        self,
        category: str,
        site: Frame,
        frames: tuple[Frame, ...] | list[Frame],
        rate: float,
        sig: detect.Signal,
        path: Path | None,
    ) -> Finding:
        name = ""
        if path is not None and path.found:
            idx = holder_index(path, frozenset())
            if idx is not None:
                name = holder_name(path, idx)
        f = Finding(
            category=category,
            site=f"{short_path(site[0])}:{site[1]}",
            function=function_at(*site),
            stack=user_stack(frames, self.reader.code),
            source=source_line(*site),
            bytes_per_iteration=rate,
            objects_per_iteration=self._objects_rate(site),
            growth_bytes=int(sig.growth.end - sig.growth.start),
            start_bytes=(self.engine.first_checkpoint or self.cps[0]).rss,
            end_bytes=self.cps[-1].rss,
            p_value=sig.growth.p_value,
            evidence=[sig.kind],
            why=WHY.get(category, WHY["other"]),
            remedies=remedies(category, rate, self.opts.horizon, name),
        )
        if category in ("listener", "closure_registry"):
            undo = release_call(frames, self.reader.code.is_user)
            if undo:
                # The registering API's own counterpart, read from the user's call.
                f.remedies.insert(
                    0,
                    Remedy(
                        "let go with the registering API's own call",
                        f"{undo}  # when the owner is done",
                        "15 min",
                        f.remedies[0].frees_bytes if f.remedies else 0,
                    ),
                )
                f.remedies = [r for r in f.remedies if "bus.unsubscribe" not in r.snippet]
        if path is not None and path.found:
            f.root = path.root
            f.path = [Hop(label=path.root.split(" → ")[0], type_name="root")] + path.hops
            f.type_name = path.hops[-1].type_name if path.hops else ""
            self._library(f, path, frames)
            bound = library_bound(path, self.reader.code)
            if bound:
                self.bounded[id(f)] = bound
            elif category != "cached_instances":
                # lru_cache on a method (B019) keeps instances alive up to its bound,
                # which is the leak; any other explicit bound stops the growth.
                user = explicit_bound(path) or self._owner_bound(path)
                if user:
                    self.user_bound[id(f)] = user
        return f

    def _owner_bound(self, path: Path) -> str | None:
        """A capacity enforced by an object that owns a collection on the path without
        being on it: Django's LocMemCache bounds the OrderedDict it shares with the
        module's ``_caches`` registry, through which the shortest path runs."""
        graph = self._graph
        if graph is None:
            return None
        for held in [o for o in path.objects if isinstance(o, _COLLECTIONS)][:3]:
            for owner in _attribute_owners(held, graph):
                found = capacity_attribute(owner, [held])
                if found:
                    return found
        return None

    def _user_frames(self, frames: Any) -> list[Frame]:
        # A memo is one the user wrote: a library's get-or-create registry keyed by
        # what the user passes (loggers by name, metrics by label) grows with the
        # user's keys, a growing collection.
        return [f for f in frames if self.reader.code.is_user(f[0])]

    def _library_owned(self, path: Path | None, growing_ids: frozenset[int]) -> bool:
        """The growing holder is reached through an object of a library's class."""
        if path is None or not path.found:
            return False
        code = self.reader.code
        module = sys.modules.get(path.root_module or "")
        root_file = getattr(module, "__file__", None) or ""
        if root_file and not code.is_user(root_file):
            return True
        idx = holder_index(path, growing_ids)
        upto = path.objects[: (idx + 1) if idx is not None else len(path.objects)]
        for obj in upto:
            cls = type(obj)
            if cls.__module__ in ("builtins", "collections", "types", "functools"):
                continue
            owner = sys.modules.get(cls.__module__)
            filename = getattr(owner, "__file__", None) or ""
            if filename and not code.is_user(filename):
                return True
        return False

    def _objects_rate(self, site: SiteKey) -> float:
        first = self.cps[0].site_blocks.get(site, 0)
        last = self.cps[-1].site_blocks.get(site, 0)
        return (last - first) / self.span

    def _library(self, f: Finding, path: Path, frames: tuple[Frame, ...] | list[Frame]) -> None:
        module = path.root_module or ""
        code = self.reader.code
        mod = sys.modules.get(module)
        filename = getattr(mod, "__file__", None) or ""
        if not filename or code.is_user(filename):
            return
        lib = code.library_of(filename) or module.split(".")[0]
        f.library = lib
        f.public_call = public_call(lib, path, frames, code)

    def _container_finding(
        self, sig: detect.Signal, obj: Any, path: Path, growing_ids: frozenset[int]
    ) -> tuple[Finding, Path]:
        # Items per iteration times the average item footprint.
        per_item = sys.getsizeof(obj) / max(1, len(obj))
        rate = sig.growth.rate * per_item
        site, frames = self._best_site_for(obj)
        ids = growing_ids | {id(obj)}
        ev = Evidence(
            path=path,
            growing_ids=ids,
            frames=self._user_frames(frames),
            library_owned=self._library_owned(path, ids),
        )
        category = classify(ev)
        f = self._finding(category, site, frames, rate, sig, path)
        f.objects_per_iteration = sig.growth.rate
        f.type_name = type_name(obj)
        f.evidence = {"signals": ["container"]}
        self.through_growing.add(id(f))
        return f, path

    def _best_site_for(self, obj: Any) -> tuple[Frame, tuple[Frame, ...]]:
        # The site that most grew among those not explaining another leak.
        first, last = self.cps[0], self.cps[-1]
        best = max(
            last.site_bytes,
            key=lambda s: last.site_bytes[s] - first.site_bytes.get(s, 0),
            default=None,
        )
        if best is None:
            return ("<unknown>", 0), ()
        return best, self.reader.site_frames.get(best, (best,))

    def _garbage_finding(self, sig: detect.Signal, garbage: list[Any]) -> Finding:
        first, last = self.cps[0], self.cps[-1]
        site = max(
            last.garbage_site_bytes,
            key=lambda s: last.garbage_site_bytes[s] - first.garbage_site_bytes.get(s, 0),
            default=None,
        )
        frames = self.reader.site_frames.get(site, (site,)) if site else ()
        f = self._finding(
            "gc_disabled_cycles", site or ("<unknown>", 0), frames, sig.growth.rate, sig, None
        )
        f.root = "unreachable reference cycle (gc disabled)"
        f.path = cycle_hops(self._cycle_starts(site, []) if site else [])
        f.objects_per_iteration = (last.garbage_objects - first.garbage_objects) / self.span
        return f

    def _cycle_starts(self, site: SiteKey, fallback: list[Any]) -> list[Any]:
        """Garbage objects from ``site`` that can be on a cycle (GC-tracked ones)."""
        starts = self.garbage_by_site.get(site)
        if starts:
            return starts
        # The site made only atoms (a str attribute): start from the garbage
        # objects that hold them.
        wanted = {id(o) for o in fallback}
        holders = [
            o
            for o in self.garbage
            if gc.is_tracked(o) and any(id(r) in wanted for r in gc.get_referents(o))
        ]
        return holders[:5] or fallback

    def _site(self, obj: Any) -> SiteKey | None:
        frames = object_frames(obj)
        return self.reader.site_of(frames) if frames else None

    def _native_finding(self, sig: detect.Signal) -> Finding:
        site: Frame = ("<native>", 0)
        frames: list[Frame] = []
        if self.native_site is not None:
            site, _, frames = self.native_site
        f = self._finding("native", site, frames or [site], sig.growth.rate, sig, None)
        f.root = "C allocator (outside Python objects)"
        # A leak, or the allocator (fragmented, holding free memory)? See #12.
        in_use = f.growth_bytes if sig.label == "malloc in use" else None
        allocator, reason = native_growth_verdict(in_use, f.end_bytes - f.start_bytes)
        f.why = f"{f.why} Allocator: {reason}."
        f.evidence = {"signals": ["native"], "allocator": allocator}
        f.type_name = "native memory"
        return f

    def _atexit_finding(self, sig: detect.Signal) -> Finding:
        site, frames = self._best_site_for(None)
        f = self._finding("listener", site, frames, 0.0, sig, None)
        f.root = "atexit registry"
        f.objects_per_iteration = sig.growth.rate
        return f


_PLAIN_MODULES = ("builtins", "collections")
_COLLECTIONS = (dict, list, set, collections.deque)


def _attribute_owners(held: Any, graph: ReverseGraph, limit: int = 8) -> list[Any]:
    """Instances of non-builtin classes holding ``held`` as an attribute (directly, or
    through their ``__dict__``)."""
    out: list[Any] = []
    for rid in graph.referrers(id(held))[:64]:
        ref = graph.get(rid)
        if ref is None:
            continue
        candidates = [ref]
        if type(ref) is dict:
            candidates = [graph.get(x) for x in graph.referrers(rid)[:16]]
        for obj in candidates:
            if obj is None or type(obj).__module__ in _PLAIN_MODULES:
                continue
            try:
                attrs = object.__getattribute__(obj, "__dict__")
            except Exception:  # noqa: BLE001 - no instance dict
                continue
            if type(attrs) is dict and any(v is held for v in attrs.values()):
                out.append(obj)
                if len(out) >= limit:
                    return out
    return out


@dataclass(frozen=True)
class Made:
    """Who made a site's objects and how they are held, to tell data from wrapper.

    ``by_user``: the allocation's innermost frame is the user's code (not a line
    inside a library call); ``own``: the non-builtin types of its sampled objects;
    ``through``: the types its retaining path passes through.
    """

    by_user: bool
    own: frozenset[type]
    through: frozenset[type]


_NOBODY = Made(False, frozenset(), frozenset())


def payload_index(made: list[Made]) -> int:
    """Index of the site that is the user's own data held by the first (biggest)
    site's library objects, or 0.

    When the biggest site's objects were made inside a library call (the ``Future``
    that ``executor.submit`` returns, the call records a ``MagicMock`` keeps) and
    hold what the user's own code made at another site (the result, the payload),
    the leaked data is the latter; the library's wrapper is a related site.
    """
    if not made or made[0].by_user or not made[0].own:
        return 0
    for k, other in enumerate(made[1:], 1):
        if other.by_user and other.through & made[0].own:
            return k
    return 0


def dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per (site, root), first kept."""
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        key = (f.site, f.root)
        if key in seen:
            continue
        seen.add(key)
        out.append(f)
    return out
