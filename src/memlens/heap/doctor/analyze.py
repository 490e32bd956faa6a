"""From growth signals to findings: samples, retention, category, remedies.

Runs once, after the iterations: it picks a few leaked objects per growing site,
builds the reverse reference graph once, walks each sample to its named root, groups
sites that share a root into one finding, and classifies and prices each finding.
"""

from __future__ import annotations

import collections
import functools
import gc
import operator
import os
import sys
import time
import tracemalloc
import types
import weakref
from collections.abc import Callable
from itertools import compress
from typing import Any

from memlens.heap.doctor import detect, growth
from memlens.heap.doctor.checkpoints import SiteKey, type_counts, type_name
from memlens.heap.doctor.classify import WHY, Evidence, classify, holder_index, holder_name
from memlens.heap.doctor.diagnosis import (
    INCONCLUSIVE,
    LEAK,
    NO_LEAK,
    Diagnosis,
    Finding,
    Hop,
)
from memlens.heap.doctor.graph import ReverseGraph
from memlens.heap.doctor.iterations import Engine
from memlens.heap.doctor.native import LineAttributor, native_reader
from memlens.heap.doctor.remedies import remedies
from memlens.heap.doctor.retention import Path, Roots, find_path
from memlens.heap.doctor.sites import (
    Frame,
    format_frame,
    function_at,
    object_frames,
    short_path,
    source_line,
    user_stack,
)

_MEMLENS_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_UNTRACKED_OK = (str, bytes, bytearray, int, float, complex)
SAMPLE_SECONDS = 0.6  # time box for finding sample objects
_ATOMS = frozenset({str, bytes, bytearray, int, complex})
_PLAIN = frozenset({dict, list, tuple, set, frozenset})


Attribution = tuple[Frame, int, list[Frame]]


def _untraced_reader() -> Callable[[], tuple[int, int]]:
    """Read ``(raw, untraced)``: allocator bytes in use (less tracemalloc's own tables)
    and the same minus everything tracemalloc traces (Python objects)."""
    base = native_reader()
    if not tracemalloc.is_tracing():
        return lambda: (base(), base())
    traced = tracemalloc.get_traced_memory
    overhead = tracemalloc.get_tracemalloc_memory

    # tracemalloc's reported overhead, subtracted once: over-subtracting would make
    # every line that frees Python temporaries look like it allocates.
    def read() -> tuple[int, int]:
        raw = base() - overhead()
        return raw, raw - traced()[0]

    return read


def attribute_native(
    engine: Engine, step: Callable[[int], object], runs: int = 6, settle: int = 2
) -> Attribution | None:
    """If native growth was seen, re-run ``step`` under a line tracer to find its line.

    ``settle`` untraced calls first let allocator caches (glibc's tcache) and
    tracemalloc's tables reach their steady state, so that only memory that is
    really kept moves the figures. Call on the thread that runs the step.
    """
    if not any(s.kind == "native" and s.state == growth.GROWING for s in engine.signals):
        return None
    base = engine.iterations
    for k in range(settle):
        step(base + k)
    attributor = LineAttributor(engine.code, _untraced_reader())
    for k in range(settle, settle + runs):
        attributor.run(functools.partial(step, base + k))
    return attributor.best()


def apply_native_site(diag: Diagnosis, engine: Engine, site: Attribution) -> None:
    """Point the native finding at the line the tracer charged (see ``attribute_native``)."""
    frame, _, frames = site
    for f in diag.findings:
        if f.category == "native":
            f.site = f"{short_path(frame[0])}:{frame[1]}"
            f.function = function_at(*frame)
            f.source = source_line(*frame)
            f.stack = user_stack(frames or [frame], engine.code)


def diagnose(engine: Engine, target: str, native_site: Attribution | None = None) -> Diagnosis:
    """Build the :class:`Diagnosis` for a finished engine run."""
    opts = engine.options
    cps = engine.checkpoints
    diag = Diagnosis(
        target=target,
        verdict=NO_LEAK,
        iterations=engine.iterations,
        warmup=max(engine.warmup, 0),
        checkpoints=len(cps),
        gc_enabled=engine.gc_enabled,
        budget=opts.budget,
        max_iterations=opts.max_iterations,
        horizon=opts.horizon,
        rss_start=engine.rss_start,
        rss_end=cps[-1].rss if cps else 0,
        malloc_available=engine.malloc,
    )
    if not engine.gc_enabled:
        diag.notes.append("the program disabled the cyclic GC: nothing was collected away")
    if len(cps) < 6:
        diag.verdict = INCONCLUSIVE
        diag.reason = (
            f"only {len(cps)} checkpoints in {engine.iterations} iterations; "
            "raise --budget or --max-iterations"
        )
        return diag
    signals = engine.signals
    growing = [s for s in signals if s.state == growth.GROWING]
    if not growing:
        unclear = [s for s in signals if s.state == growth.UNCLEAR]
        if unclear:
            diag.verdict = INCONCLUSIVE
            s = unclear[0]
            diag.reason = (
                f"{_signal_name(s)} grew in some but not all of the last segments "
                f"after {engine.iterations} iterations ({engine.stop_reason}); "
                "run longer to tell a slow leak from a cache still filling"
            )
        else:
            diag.reason = (
                f"no sustained growth over {engine.iterations - diag.warmup} measured iterations"
            )
        return diag
    builder = _FindingBuilder(engine, growing, native_site)
    findings = builder.build()
    diag.findings = []
    for f in findings:
        bound = builder.bounded.get(id(f)) or builder.user_bound.get(id(f))
        if bound:
            diag.notes.append(f"{f.site}: {bound}; not a leak")
        else:
            diag.findings.append(f)
    if findings and not diag.findings:
        diag.verdict = NO_LEAK
        diag.reason = "growth only in bounded caches that are still filling up to their bound"
        return diag
    if diag.findings:
        diag.verdict = LEAK
        diag.reason = f"{len(diag.findings)} leak(s) with sustained growth"
    else:  # pragma: no cover - every growing signal yields a finding
        diag.verdict = INCONCLUSIVE
        diag.reason = "growth was detected but could not be attributed"
    return diag


def _signal_name(s: detect.Signal) -> str:
    if s.kind == "site" and isinstance(s.key, tuple):
        return f"memory allocated at {short_path(s.key[0])}:{s.key[1]}"
    if s.kind == "container":
        return f"a {s.label}"
    return s.label or s.kind


class _FindingBuilder:
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

        garbage: list[Any] = self._collect_garbage() if garbage_signal else []
        self.garbage = garbage
        garbage_ids = {id(o) for o in garbage}
        containers = self._containers(set(container_signals))
        samples = self._samples(set(site_signals), containers, garbage)  # site -> objects
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
        try:
            roots = Roots(graph, ignore)
            growing_ids = frozenset(container_signals)
            findings = self._site_findings(
                site_signals, samples, graph, roots, garbage_ids, growing_ids, atexit_signal
            )
            covered = {id(o) for f in findings for o in f[1].objects} if findings else set()
            for cid, sig in container_signals.items():
                obj = containers.get(cid)
                if obj is None or cid in covered or _holds_weakrefs(obj):
                    continue
                path = find_path(obj, graph, roots)
                if not path.found:
                    continue
                covered.update(id(o) for o in path.objects)
                findings.append(self._container_finding(sig, obj, path, growing_ids))
        finally:
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
        return _dedupe(out)

    # -- gathering -----------------------------------------------------------------
    def _collect_garbage(self) -> list[Any]:
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

    def _containers(self, ids: set[int]) -> dict[int, Any]:
        if not ids:
            return {}
        out: dict[int, Any] = {}
        for obj in gc.get_objects():
            if id(obj) in ids:
                out[id(obj)] = obj
        return out

    def _samples(
        self, sites: set[SiteKey], containers: dict[int, Any], garbage: list[Any]
    ) -> dict[SiteKey, list[Any]]:
        """Up to N live objects allocated at each growing site, newest first."""
        want = self.opts.samples_per_site
        found: dict[SiteKey, list[Any]] = {s: [] for s in sites}
        if not sites:
            return found
        site_of = self.reader.site_of
        objs_now = gc.get_objects()
        rates = detect.type_rates(
            self.reader.baseline_types,
            type_counts(objs_now),
            self.engine.iterations - self.cps[0].iteration,
        )
        del objs_now
        # Instances of classes that grew; builtin containers and atoms are reached
        # through the big collections that hold them (below), which is far cheaper.
        grown = {name for name, r in rates.items() if r >= 0.2}
        remaining = set(sites)
        # A sample should look like what the site leaks: skip objects much smaller
        # than the site's average block (the subclass registry's int keys that
        # ``type()`` allocates next to the class it leaks, say).
        first, last = self.cps[0], self.cps[-1]
        smallest: dict[SiteKey, float] = {}
        for site in sites:
            grew = last.site_bytes.get(site, 0) - first.site_bytes.get(site, 0)
            blocks = last.site_blocks.get(site, 0) - first.site_blocks.get(site, 0)
            smallest[site] = 0.5 * grew / blocks if blocks > 0 and grew > 0 else 0.0

        def consider(obj: Any) -> None:
            if isinstance(obj, weakref.ref):
                return  # a weak reference retains nothing; its referent is the leak
            frames = object_frames(obj)
            if not frames:
                return
            site = site_of(frames)
            if site in remaining and sys.getsizeof(obj, 0) >= smallest[site]:
                bucket = found[site]
                if all(o is not obj for o in bucket):
                    bucket.append(obj)
                    if len(bucket) >= want:
                        remaining.discard(site)

        deadline = time.perf_counter() + SAMPLE_SECONDS
        for obj in garbage:
            if not remaining:
                break
            consider(obj)
        for obj in containers.values():
            for item in _newest(obj, 50):
                if not remaining:
                    break
                consider(item)
        objs = gc.get_objects()
        try:
            if remaining:
                # Leaked objects sit in big collections (tracked or not: a dict of
                # atoms is untracked); the newest entries are at the end.
                need = max(8, (self.cps[-1].iteration - self.cps[0].iteration) // 2)
                grown_ids = set(self.cps[-1].container_lens)
                holders = _big_collections(objs, need, grown_ids)
                # The time box covers looking through the holders, not finding them:
                # on a big heap that scan alone can take longer than the box.
                deadline = time.perf_counter() + SAMPLE_SECONDS
                for holder in holders:
                    if not remaining or time.perf_counter() > deadline:
                        break
                    for item in _newest(holder, 16):
                        consider(item)
                        if type(item) in _PLAIN and not gc.is_tracked(item):
                            for sub in _newest(item, 8):
                                consider(sub)
            if remaining:
                # Instances held some other way (a linked chain, a bound method):
                # the newest objects of the types that grew. Survivors are appended
                # to the oldest generation, so the newest are at the end.
                grown_types = {t for t in set(map(type, objs)) if type_name_of(t) in grown}
                deadline = time.perf_counter() + SAMPLE_SECONDS
                budget = 50_000
                for obj in reversed(objs):
                    if not remaining or budget <= 0:
                        break
                    if type(obj) not in grown_types:
                        continue
                    budget -= 1
                    consider(obj)
                    for ref in gc.get_referents(obj):
                        if type(ref) in _ATOMS:
                            consider(ref)
                    if budget % 1000 == 0 and time.perf_counter() > deadline:
                        break
        finally:
            del objs
        return found

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
            site, sig, first_path, in_garbage = members[0]
            chosen = next((m[2] for m in members if m[2] is not None), first_path)
            rate = sum(m[1].growth.rate for m in members)
            frames = self.reader.site_frames.get(site, (site,))
            ev = Evidence(
                path=chosen,
                in_garbage=any(m[3] for m in members),
                atexit=gk == "atexit registry",
                growing_ids=growing_ids,
                frames=frames,
            )
            category = classify(ev)
            finding = self._finding(category, site, frames, rate, sig, chosen)
            if gk == "<unreachable cycles>" or ev.in_garbage:
                finding.root = "unreachable reference cycle (gc disabled)"
                finding.path = self._cycle_hops(self._cycle_starts(site, samples.get(site, [])))
            elif gk == "atexit registry" and chosen is None:
                finding.root = "atexit registry"
            finding.related_sites = [f"{short_path(m[0][0])}:{m[0][1]}" for m in members[1:]]
            finding.samples = sum(len(samples.get(m[0], [])) for m in members)
            out.append((finding, chosen or Path(root="", root_kind="none")))
        return out

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
            start_bytes=self.cps[0].rss,
            end_bytes=self.cps[-1].rss,
            p_value=sig.growth.p_value,
            evidence=[sig.kind],
            why=WHY.get(category, WHY["other"]),
            remedies=remedies(category, rate, self.opts.horizon, name),
        )
        if path is not None and path.found:
            f.root = path.root
            f.path = [Hop(label=path.root.split(" → ")[0], type_name="root")] + path.hops
            f.type_name = path.hops[-1].type_name if path.hops else ""
            self._library(f, path, frames)
            bound = _library_bound(path, self.reader.code)
            if bound:
                self.bounded[id(f)] = bound
            elif category != "cached_instances":
                # lru_cache on a method (B019) keeps instances alive up to its bound,
                # which is the leak; any other explicit bound stops the growth.
                user = _explicit_bound(path)
                if user:
                    self.user_bound[id(f)] = user
        return f

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
        f.public_call = _public_call(lib, path, frames, code)

    def _container_finding(
        self, sig: detect.Signal, obj: Any, path: Path, growing_ids: frozenset[int]
    ) -> tuple[Finding, Path]:
        # Items per iteration times the average item footprint.
        per_item = sys.getsizeof(obj) / max(1, len(obj))
        rate = sig.growth.rate * per_item
        site, frames = self._best_site_for(obj)
        ev = Evidence(path=path, growing_ids=growing_ids | {id(obj)}, frames=frames)
        category = classify(ev)
        f = self._finding(category, site, frames, rate, sig, path)
        f.objects_per_iteration = sig.growth.rate
        f.type_name = type_name(obj)
        f.evidence = ["container"]
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
        f.path = self._cycle_hops(self._cycle_starts(site, []) if site else [])
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

    def _cycle_hops(self, objs: list[Any]) -> list[Hop]:
        """Describe one reference cycle through a sample: A → .attr → B → … → A."""
        from memlens.heap.doctor.retention import hop_label

        for start in objs:
            prev: dict[int, Any] = {id(start): None}
            queue = collections.deque([start])
            while queue and len(prev) < 2000:
                obj = queue.popleft()
                for ref in gc.get_referents(obj):
                    if ref is start:
                        chain = [obj]
                        while prev[id(chain[-1])] is not None:
                            chain.append(prev[id(chain[-1])])
                        chain.reverse()  # start … obj
                        hops = [
                            Hop(
                                label=f"unreachable cycle: {type_name(start).rsplit('.', 1)[-1]}",
                                type_name=type_name(start),
                            )
                        ]
                        for a, b in zip(chain, chain[1:] + [start]):
                            hops.append(Hop(label=hop_label(a, b), type_name=type_name(b)))
                        return hops
                    if gc.is_tracked(ref) and id(ref) not in prev and not isinstance(ref, type):
                        prev[id(ref)] = obj
                        queue.append(ref)
        return []

    def _native_finding(self, sig: detect.Signal) -> Finding:
        site: Frame = ("<native>", 0)
        frames: list[Frame] = []
        if self.native_site is not None:
            site, _, frames = self.native_site
        f = self._finding("native", site, frames or [site], sig.growth.rate, sig, None)
        f.root = "C allocator (outside Python objects)"
        f.evidence = ["native"]
        f.type_name = "native memory"
        return f

    def _atexit_finding(self, sig: detect.Signal) -> Finding:
        site, frames = self._best_site_for(None)
        f = self._finding("listener", site, frames, 0.0, sig, None)
        f.root = "atexit registry"
        f.objects_per_iteration = sig.growth.rate
        return f


def _big_collections(objs: list[Any], need: int, grew: set[int]) -> list[Any]:
    """Collections with at least ``need`` entries, tracked or held by tracked objects.

    Those seen growing come first, then untracked ones (the GC stopped tracking them
    because they hold only atoms, so their growth was not measured), then the rest.
    Filtering runs in C iterators: type membership, ``len``, ``gc.is_tracked``.
    """
    kinds = _PLAIN | {collections.deque}
    tracked = list(compress(objs, map(kinds.__contains__, map(type, objs))))
    big = list(compress(tracked, map(need.__le__, map(len, tracked))))
    first = [o for o in big if id(o) in grew]
    rest = [o for o in big if id(o) not in grew]
    out = first
    seen = set(map(id, big))
    refs = gc.get_referents(*objs)
    plain = list(compress(refs, map(_PLAIN.__contains__, map(type, refs))))
    untracked = list(compress(plain, map(operator.not_, map(gc.is_tracked, plain))))
    for obj in compress(untracked, map(need.__le__, map(len, untracked))):
        if id(obj) not in seen:
            seen.add(id(obj))
            out.append(obj)
    out.extend(rest)
    # functools.lru_cache keeps bounded results in C links the GC cannot see into;
    # the wrapper itself reports them as its referents.
    for obj in objs:
        if type(obj).__name__ == "_lru_cache_wrapper":
            try:
                size = obj.cache_info().currsize
            except Exception:  # noqa: BLE001
                continue
            if size >= need:
                out.insert(0, obj)
    return out


def type_name_of(t: type) -> str:
    mod = t.__module__
    return t.__qualname__ if mod in ("builtins", None) else f"{mod}.{t.__qualname__}"


# Interpreter caches with a fixed bound: growth there stops by itself.
_KNOWN_BOUNDED = {
    ("re", "_cache"): "re's pattern cache (bounded by re._MAXCACHE)",
    ("re", "_cache2"): "re's pattern cache (bounded)",
    ("linecache", "cache"): "linecache (one entry per source file)",
    ("sre_compile", "_cache"): "re's compiler cache (bounded)",
}


def _public_call(lib: str, path: Path, frames: Any, code: Any) -> str:
    """The call into ``lib`` the user wrote that created the holder.

    First a decorator on the user's function held by the root (``@cachetools.cached(
    cache={})``), then the user's own line on the allocation stack that names the
    library, then the outermost public function of the library on that stack.
    """
    holder = path.objects[0] if path.objects else None
    if path.root_kind == "module" and path.hops:
        name = path.hops[0].label.removeprefix("global ")
        module = (
            sys.modules.get(path.root.split(" ")[1]) if path.root.startswith("module ") else None
        )
        text = _decorator_text(module, name, lib)
        if text:
            return text
    del holder
    # The user's line that hands the object to the library (``log.addHandler(h)``)
    # or names it (``cachetools.LRUCache(...)``).
    hints = (f"{lib}.", f"{lib}(", "addHandler(") if lib == "logging" else (f"{lib}.", f"{lib}(")
    for filename, lineno in list(frames):
        if code.is_user(filename):
            line = source_line(filename, lineno)
            if any(h in line for h in hints):
                return line.split("  #")[0].strip()
    for filename, lineno in reversed(list(frames)):
        if not code.is_user(filename) and code.library_of(filename) == lib:
            parts = [p for p in function_at(filename, lineno).split(".") if p != "<locals>"]
            parts = [p for p in parts if not p.startswith("_")] or parts[:1]
            return f"{lib}.{'.'.join(parts)}"
    return lib


def _decorator_text(module: Any, name: str, lib: str) -> str | None:
    import ast
    import inspect

    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            for deco in node.decorator_list:
                text = ast.get_source_segment(source, deco) or ""
                if text.startswith(lib) or f"{lib}." in text:
                    return "@" + text
    return None


def _library_bound(path: Path, code: Any) -> str | None:
    """Why a library root is a bounded cache, or None."""
    module = path.root_module or ""
    mod = sys.modules.get(module)
    filename = getattr(mod, "__file__", None) or ""
    if not filename or code.is_user(filename):
        return None
    if path.root_kind == "lru_cache":
        try:
            maxsize = path.root_object.cache_info().maxsize
        except Exception:  # noqa: BLE001 - not a functools wrapper after all
            maxsize = None
        if maxsize is not None:
            return f"a library lru_cache bounded at {maxsize} entries"
    if path.root_kind == "module" and path.hops:
        name = path.hops[0].label.removeprefix("global ")
        known = _KNOWN_BOUNDED.get((module, name))
        if known:
            return known
    return None


def _explicit_bound(path: Path) -> str | None:
    """A bound stated in code on the retaining path: an lru_cache's maxsize, a deque's
    maxlen, a cachetools-style ``maxsize``; growth below it is a cache filling."""
    if path.root_kind == "lru_cache":
        try:
            info = path.root_object.cache_info()
        except Exception:  # noqa: BLE001
            info = None
        if info is not None and info.maxsize is not None and info.currsize < info.maxsize:
            return f"lru_cache bounded at {info.maxsize:,} entries ({info.currsize:,} so far)"
    for obj in path.objects:
        if isinstance(obj, collections.deque) and obj.maxlen is not None and len(obj) < obj.maxlen:
            return f"deque bounded at maxlen={obj.maxlen:,} ({len(obj):,} so far)"
        maxsize = getattr(type(obj), "maxsize", None)
        if isinstance(maxsize, property):
            try:
                bound, current = obj.maxsize, obj.currsize
            except Exception:  # noqa: BLE001
                continue
            if isinstance(bound, (int, float)) and current < bound:
                return f"{type(obj).__name__} bounded at maxsize={bound:,} ({current:,} so far)"
    return None


def _holds_weakrefs(holder: Any) -> bool:
    """A collection of weak references: bookkeeping that follows a leak elsewhere."""
    items = _newest(holder, 8)
    return bool(items) and all(isinstance(x, weakref.ref) for x in items)


def _newest(holder: Any, n: int) -> list[Any]:
    """The last ``n`` entries (values and keys for a mapping)."""
    try:
        if isinstance(holder, dict):
            keys = list(holder)[-n:]
            return [holder[k] for k in keys] + keys
        if isinstance(holder, (set, frozenset)):
            return list(holder)[-n:]
        if type(holder).__name__ == "_lru_cache_wrapper":
            return gc.get_referents(holder)[-n:]
        return list(holder)[-n:]
    except Exception:  # noqa: BLE001 - mutated concurrently or odd subclass
        return []


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        key = (f.site, f.root)
        if key in seen:
            continue
        seen.add(key)
        out.append(f)
    return out


__all__ = ["diagnose", "format_frame"]
