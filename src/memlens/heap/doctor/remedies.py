"""Ranked fixes for each category, with a snippet, the effort, and what they free.

``frees_bytes`` is the leak's observed rate times the diagnosis horizon (10,000
iterations by default): the memory the fix stops leaking over that many calls. A
partial fix (clearing periodically) is credited with most, not all, of it.
"""

from __future__ import annotations

from memlens.heap.doctor.diagnosis import Finding, Remedy

# Types whose instances cannot be weakly referenced: a WeakValueDictionary or a
# WeakSet cannot hold them, so "hold values weakly" is no fix for them.
_NOT_WEAKREFABLE = frozenset(
    [
        "str",
        "bytes",
        "bytearray",
        "int",
        "float",
        "complex",
        "bool",
        "tuple",
        "list",
        "dict",
        "set",
        "frozenset",
        "NoneType",
        "memoryview",
        "range",
        "slice",
    ]
)
_WEAK_TITLES = ("hold values weakly", "hold callbacks weakly")

# (title, snippet, effort, share of the leak it removes)
_TABLE: dict[str, list[tuple[str, str, str, float]]] = {
    "growing_collection": [
        (
            "bound it",
            "cachetools.LRUCache(maxsize=1000)  # or collections.deque(maxlen=1000) for a log",
            "5 min",
            1.0,
        ),
        ("remove entries when done", "try: ... finally: {name}.pop(key, None)", "15 min", 1.0),
        (
            "hold values weakly",
            "{name} = weakref.WeakValueDictionary()"
            "  # or memlens.remedies.WeakReferenceCache('{name}'): counted in /metrics",
            "10 min",
            1.0,
        ),
    ],
    "unbounded_memo": [
        (
            "bound the memo",
            "@functools.lru_cache(maxsize=1024)  # or cachetools.LRUCache(maxsize=1024)",
            "5 min",
            1.0,
        ),
        ("expire entries", "cachetools.TTLCache(maxsize=1024, ttl=300)", "10 min", 1.0),
        ("clear it periodically", "if len({name}) > 10_000: {name}.clear()", "5 min", 0.9),
        (
            "bound it by entries and bytes (memlens.remedies)",
            "@memlens.remedies.memoize(max_entries=1024, max_bytes='64 MiB')"
            "  # hits/misses/bytes in /metrics",
            "5 min",
            1.0,
        ),
    ],
    "listener": [
        (
            "unsubscribe when done",
            "try: ... finally: bus.unsubscribe(handler)  # or logger.removeHandler(h)",
            "15 min",
            1.0,
        ),
        (
            "register once, at start-up",
            "move the registration out of the per-call path",
            "15 min",
            1.0,
        ),
        (
            "hold callbacks weakly",
            "self._subscribers = weakref.WeakSet()  # bound methods: weakref.WeakMethod(cb)",
            "20 min",
            1.0,
        ),
    ],
    "cached_instances": [
        (
            "cache on the instance, not on the class",
            "@functools.cached_property  # or a module-level lru_cache keyed by plain values",
            "30 min",
            1.0,
        ),
        ("bound the cache", "@functools.lru_cache(maxsize=128)", "5 min", 0.9),
        ("clear it when an instance is closed", "type(self).method.cache_clear()", "10 min", 0.8),
        (
            "memoize without keeping instances alive (memlens.remedies)",
            "@memlens.remedies.memoize(max_entries=1024)  # per instance, dropped with it",
            "5 min",
            1.0,
        ),
    ],
    "stored_traceback": [
        (
            "store the formatted error, not the exception",
            "errors.append(''.join(traceback.format_exception(exc)))",
            "10 min",
            1.0,
        ),
        (
            "drop the traceback",
            "exc.__traceback__ = None  # or exc.with_traceback(None)",
            "5 min",
            1.0,
        ),
        ("bound the list", "errors = collections.deque(maxlen=100)", "5 min", 0.9),
    ],
    "closure_registry": [
        (
            "unregister the closure when done",
            "try: ... finally: {name}.remove(callback)",
            "15 min",
            1.0,
        ),
        (
            "capture only what the closure needs",
            "key = request.id  # capture small values, not the whole object",
            "15 min",
            0.9,
        ),
        ("bound the registry", "{name} = collections.deque(maxlen=1000)", "5 min", 0.9),
    ],
    "thread_local": [
        ("reset per unit of work", "try: ... finally: _local.__dict__.clear()", "10 min", 1.0),
        (
            "use a context variable",
            "request_state = contextvars.ContextVar('request_state')",
            "30 min",
            1.0,
        ),
    ],
    "gc_disabled_cycles": [
        (
            "break the cycle with a weak reference",
            "self.parent = weakref.ref(parent)",
            "30 min",
            1.0,
        ),
        (
            "let the collector run",
            "gc.enable()  # or gc.freeze() after start-up, then gc.enable()",
            "5 min",
            1.0,
        ),
        ("collect periodically", "if i % 1000 == 0: gc.collect()", "5 min", 0.95),
        (
            "turn the GC off only around the hot section (memlens.remedies)",
            "with memlens.remedies.GarbageCollectionOptimizer().disable_gc_temporarily(): ...",
            "10 min",
            1.0,
        ),
    ],
    "native": [
        (
            "free what the C call allocates",
            "ptr = lib.alloc(n)\ntry: ...\nfinally: lib.free(ptr)",
            "30 min",
            1.0,
        ),
        ("use the library's release/close API", "with lib.open(...) as h: ...", "30 min", 1.0),
        (
            "pool the handles so unreturned ones are reported (memlens.remedies)",
            "pool = memlens.remedies.MemoryPool(name='handles'); "
            "pool.register_factory('h', lib.open, limit=8)\nwith pool.acquire('h') as h: ...",
            "20 min",
            0.9,
        ),
    ],
    "other": [
        ("drop the reference when done", "del obj  # or set the attribute to None", "30 min", 1.0),
    ],
}


def remedies(category: str, rate: float, horizon: int, name: str = "") -> list[Remedy]:
    """Ranked remedies for ``category``; ``name`` is the holder's identifier."""
    holder = name or "cache"
    out = []
    for title, snippet, effort, share in _TABLE.get(category, _TABLE["other"]):
        out.append(
            Remedy(
                title=title,
                snippet=snippet.replace("{name}", holder),
                effort=effort,
                saving=int(max(rate, 0.0) * horizon * share),
            )
        )
    return out


def refine(finding: Finding) -> None:
    """Adjust a finding's remedies to what was actually found.

    - An exit hook (the atexit registry) is let go with ``atexit.unregister``, not
      by unsubscribing from a bus.
    - Values of types that cannot be weakly referenced get no "hold them weakly"
      advice (``WeakValueDictionary`` would raise ``TypeError`` on them).
    """
    leaked = finding.type_name.rsplit(".", 1)[-1]
    if leaked in _NOT_WEAKREFABLE and finding.category != "listener":
        finding.remedies = [r for r in finding.remedies if r.title not in _WEAK_TITLES]
    if _is_exit_hook(finding):
        rate = finding.remedies[0].frees_bytes if finding.remedies else 0
        finding.remedies = [
            Remedy(
                "unregister the exit hook when done",
                "atexit.register(conn.close)\ntry: ...\nfinally: atexit.unregister(conn.close)",
                "15 min",
                rate,
            ),
            Remedy(
                "register once, at start-up",
                "register one hook that closes whatever is still open at exit",
                "15 min",
                rate,
            ),
            Remedy(
                "track open objects weakly",
                "_open = weakref.WeakSet()  # one atexit hook closes what is left",
                "20 min",
                rate,
            ),
        ]


def _is_exit_hook(finding: Finding) -> bool:
    if "atexit" in finding.root:
        return True
    return bool(finding.path) and "atexit" in finding.path[0].label
