"""Object pools that are bounded, thread-safe and say which borrowed objects never came back.

- :class:`MemoryPool` keeps idle objects by kind (``put``/``get``), makes new ones
  from a registered factory up to a limit, and lends byte buffers by size class
  (``get_buffer``/``put_buffer``), so a service reuses a few big buffers instead of
  fragmenting the allocator with many.
- :class:`ResourceManager` hands out named resources (a connection, a model, a
  file) one holder at a time with ``with acquire_resource(name, kind)``, times the
  holds, and cleans up what was never unregistered.

A borrowed object that is dropped without being returned is a *pool leak*: the
pool counts it, remembers the line that borrowed it (``leaks()``), and the
registry exports the count to the monitor.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from memlens.core import pool_leaks
from memlens.core.errors import ConfigError, PoolError, ResourceError
from memlens.core.units import format_bytes
from memlens.remedies import registry

# Buffer size classes: powers of two from 256 B to 16 MiB.
DEFAULT_SIZE_CLASSES: tuple[int, ...] = tuple(2**n for n in range(8, 25))


def _caller_site(depth: int = 3) -> str:
    """``file:line`` of the code that called into the pool (cheap: no traceback)."""
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return "?"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _type_name(obj: object) -> str:
    """``module.Class`` as the doctor's paths write it (builtins without a module)."""
    t = type(obj)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


class Buffer(bytearray):
    """A pooled byte buffer: a ``bytearray`` of its size class's capacity.

    Use ``memoryview(buf)[:n]`` for the part you asked for; the contents are whatever
    the previous borrower left (not zeroed), as with ``malloc``.
    """

    __slots__ = ("__weakref__", "size_class")

    size_class: int


@dataclass(frozen=True)
class PoolLeak:
    """A borrowed object the pool never got back."""

    kind: str
    site: str  # file:line that borrowed it
    borrowed_for: float  # seconds between borrowing and being dropped (or now)
    alive: bool  # still referenced somewhere (held too long) or dropped (lost)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Factory:
    make: Callable[[], Any]
    limit: int | None
    created: int = 0  # alive objects made by this factory (returned or lent)


class MemoryPool:
    """A bounded pool of reusable objects and buffers (see the module docstring).

    ``max_size`` bounds the idle objects kept (all kinds together); a ``put`` beyond
    it drops the object (counted as ``discarded``). ``max_idle_bytes`` bounds idle
    buffers. ``leak_after`` seconds: a borrowed object still out after that long is
    reported by :meth:`leaks` as held too long.
    """

    kind = "pool"

    def __init__(
        self,
        max_size: int = 1000,
        *,
        name: str = "pool",
        size_classes: tuple[int, ...] = DEFAULT_SIZE_CLASSES,
        max_idle_bytes: int = 64 * 1024**2,
        leak_after: float = 300.0,
        max_leak_records: int = 100,
    ) -> None:
        if max_size < 1:
            raise ConfigError(f"invalid max_size={max_size!r}: must be at least 1")
        if not size_classes or any(b <= a for a, b in zip(size_classes, size_classes[1:])):
            raise ConfigError("size_classes must be a non-empty, strictly increasing tuple")
        self.name = name
        self.max_size = max_size
        self.size_classes = size_classes
        self.max_idle_bytes = max_idle_bytes
        self.leak_after = leak_after
        self._lock = threading.Condition(threading.Lock())
        self._idle: dict[str, deque[Any]] = {}
        self._idle_count = 0
        self._buffers: dict[int, list[Buffer]] = {}
        self._idle_bytes = 0
        self._factories: dict[str, _Factory] = {}
        # id(obj) -> (kind, site, borrowed at, weakref or None)
        self._lent: dict[int, tuple[str, str, float, weakref.ref[Any] | None]] = {}
        self._leaks: deque[PoolLeak] = deque(maxlen=max_leak_records)
        # Losses seen while the lock was busy; recorded by the next reader.
        self._pending_lost: deque[tuple[int, weakref.ref[Any]]] = deque()
        self.hits = self.misses = self.created = self.returned = 0
        self.discarded = self.exhausted = self.leaked = self.untracked = 0
        self._closed = False
        registry.register(self)

    # -- objects --------------------------------------------------------------------
    def register_factory(
        self, kind: str, factory: Callable[[], Any], limit: int | None = None
    ) -> None:
        """Make objects of ``kind`` with ``factory`` when none is idle, at most ``limit``
        alive at once (idle + borrowed); beyond it ``get`` waits, then raises PoolError."""
        if limit is not None and limit < 1:
            raise ConfigError(f"invalid limit={limit!r} for {kind!r}: must be at least 1")
        with self._lock:
            self._factories[kind] = _Factory(factory, limit)

    def put(self, kind: str, obj: Any) -> bool:
        """Return (or add) an idle object of ``kind``; ``False`` if the pool was full."""
        with self._lock:
            self._check_open()
            self._returned(id(obj))
            if self._idle_count >= self.max_size:
                self.discarded += 1
                factory = self._factories.get(kind)
                if factory is not None and factory.created > 0:
                    factory.created -= 1
                self._lock.notify()
                return False
            self._idle.setdefault(kind, deque()).append(obj)
            self._idle_count += 1
            self.returned += 1
            self._lock.notify()
            return True

    def get(self, kind: str, default: Any = None, timeout: float | None = 0.0) -> Any:
        """An idle object of ``kind``, or a new one from its factory, else ``default``.

        With a factory at its ``limit`` and every object borrowed, waits up to
        ``timeout`` seconds (``None``: forever) for one to come back, then raises
        :class:`~memlens.core.errors.PoolError`.
        """
        site = _caller_site(2)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                self._check_open()
                idle = self._idle.get(kind)
                if idle:
                    obj = idle.pop()
                    self._idle_count -= 1
                    self.hits += 1
                    self._lend(kind, obj, site)
                    return obj
                factory = self._factories.get(kind)
                if factory is None:
                    self.misses += 1
                    return default
                if factory.limit is None or factory.created < factory.limit:
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self.exhausted += 1
                    raise PoolError(
                        f"pool {self.name!r} exhausted: all {factory.limit} {kind!r} objects are "
                        f"borrowed (oldest from {self._oldest_site(kind)}); return them with "
                        "put() or raise the limit"
                    )
                self._lock.wait(remaining)
            self.misses += 1
            factory.created += 1
        try:
            obj = factory.make()
        except BaseException:
            with self._lock:
                factory.created -= 1
                self._lock.notify()
            raise
        with self._lock:
            self.created += 1
            self._lend(kind, obj, site)
        return obj

    @contextlib.contextmanager
    def acquire(self, kind: str, timeout: float | None = 0.0) -> Iterator[Any]:
        """Borrow an object of ``kind`` for a block and put it back on any exit."""
        obj = self.get(kind, timeout=timeout)
        if obj is None:
            raise PoolError(
                f"pool {self.name!r} has no idle {kind!r} object and no factory for it; "
                "register_factory() or put() one first"
            )
        try:
            yield obj
        finally:
            self.put(kind, obj)

    def _lend(self, kind: str, obj: Any, site: str) -> None:
        ident = id(obj)
        try:
            ref: weakref.ref[Any] | None = weakref.ref(obj, self._dropped_callback(ident))
        except TypeError:  # ints, tuples, ...: counted, not tracked
            self.untracked += 1
            ref = None
        self._lent[ident] = (kind, site, time.monotonic(), ref)
        pool_leaks.record_borrow(self.name, kind, site, _type_name(obj))

    def _returned(self, ident: int) -> None:
        entry = self._lent.pop(ident, None)
        if entry is not None:
            pool_leaks.record_return(self.name, entry[0], entry[1])

    def _dropped_callback(self, ident: int) -> Callable[[weakref.ref[Any]], None]:
        pool_ref = weakref.ref(self)

        def dropped(ref: weakref.ref[Any]) -> None:
            pool = pool_ref()
            if pool is not None:
                pool._lost(ident, ref)

        return dropped

    def _lost(self, ident: int, ref: weakref.ref[Any]) -> None:
        # A borrowed object was collected without coming back: a pool leak. Runs
        # inside the GC or a decref, so it takes the lock only without waiting.
        if not self._lock.acquire(blocking=False):
            self._pending_lost.append((ident, ref))
            return
        try:
            self._record_lost(ident, ref)
        finally:
            self._lock.release()

    def _record_lost(self, ident: int, ref: weakref.ref[Any]) -> None:
        entry = self._lent.get(ident)
        if entry is None or entry[3] is not ref:
            return
        del self._lent[ident]
        kind, site, since, _ = entry
        self.leaked += 1
        pool_leaks.record_lost(self.name, kind, site)
        factory = self._factories.get(kind)
        if factory is not None and factory.created > 0:
            factory.created -= 1  # its place can be refilled
            self._lock.notify()
        self._leaks.append(PoolLeak(kind, site, time.monotonic() - since, alive=False))

    def _drain_lost(self) -> None:
        while self._pending_lost:
            self._record_lost(*self._pending_lost.popleft())

    def _oldest_site(self, kind: str) -> str:
        out = [(since, site) for k, site, since, _ in self._lent.values() if k == kind]
        return min(out)[1] if out else "?"

    # -- buffers --------------------------------------------------------------------
    def size_class(self, nbytes: int) -> int:
        """The smallest size class that holds ``nbytes``."""
        for size in self.size_classes:
            if size >= nbytes:
                return size
        raise PoolError(
            f"pool {self.name!r}: {format_bytes(nbytes)} is above the largest size class "
            f"({format_bytes(self.size_classes[-1])})"
        )

    def get_buffer(self, nbytes: int) -> Buffer:
        """A buffer of at least ``nbytes`` (its size class), reused when one is idle."""
        if nbytes < 0:
            raise PoolError(f"invalid buffer size {nbytes}")
        size = self.size_class(nbytes)
        site = _caller_site(2)
        with self._lock:
            self._check_open()
            idle = self._buffers.get(size)
            if idle:
                buf = idle.pop()
                self._idle_bytes -= size
                self.hits += 1
                self._lend("buffer", buf, site)
                return buf
            self.misses += 1
        buf = Buffer(size)
        buf.size_class = size
        with self._lock:
            self.created += 1
            self._lend("buffer", buf, site)
        return buf

    def put_buffer(self, buf: Buffer) -> bool:
        """Return a buffer from :meth:`get_buffer`; ``False`` if it was not kept."""
        size = getattr(buf, "size_class", None)
        if not isinstance(buf, Buffer) or size is None or len(buf) != size:
            raise PoolError(
                f"pool {self.name!r}: put_buffer() takes buffers from get_buffer() at their "
                f"full size (got {type(buf).__name__} of {len(buf)} bytes)"
            )
        with self._lock:
            self._check_open()
            self._returned(id(buf))
            if self._idle_bytes + size > self.max_idle_bytes:
                self.discarded += 1
                return False
            self._buffers.setdefault(size, []).append(buf)
            self._idle_bytes += size
            self.returned += 1
            return True

    # -- reporting ------------------------------------------------------------------
    def leaks(self) -> list[PoolLeak]:
        """Objects lost (dropped unreturned) and objects borrowed longer than ``leak_after``."""
        now = time.monotonic()
        with self._lock:
            self._drain_lost()
            out = list(self._leaks)
            for kind, site, since, _ in self._lent.values():
                if now - since >= self.leak_after:
                    out.append(PoolLeak(kind, site, now - since, alive=True))
        return out

    def get_stats(self) -> dict[str, Any]:
        """Counters, idle/borrowed counts and idle buffer bytes, overall and per kind."""
        with self._lock:
            self._drain_lost()
            per_kind = {k: len(v) for k, v in self._idle.items() if v}
            borrowed: dict[str, int] = {}
            for kind, *_ in self._lent.values():
                borrowed[kind] = borrowed.get(kind, 0) + 1
            return {
                "name": self.name,
                "max_size": self.max_size,
                "hits": self.hits,
                "misses": self.misses,
                "created": self.created,
                "returned": self.returned,
                "discarded": self.discarded,
                "exhausted": self.exhausted,
                "leaked": self.leaked,
                "untracked": self.untracked,
                "idle": self._idle_count + sum(len(v) for v in self._buffers.values()),
                "borrowed": len(self._lent),
                "idle_bytes": self._idle_bytes,
                "idle_by_kind": per_kind,
                "borrowed_by_kind": borrowed,
                "buffers_by_class": {s: len(v) for s, v in self._buffers.items() if v},
            }

    def metrics(self) -> dict[str, float]:
        stats = self.get_stats()
        return {m.key: float(stats[m.key]) for m in registry.METRICS["pool"]}

    def clear(self) -> int:
        """Drop every idle object and buffer (borrowed ones are unaffected)."""
        with self._lock:
            n = self._idle_count + sum(len(v) for v in self._buffers.values())
            for kind, idle in self._idle.items():
                factory = self._factories.get(kind)
                if factory is not None:
                    factory.created = max(0, factory.created - len(idle))
            self._idle.clear()
            self._buffers.clear()
            self._idle_count = self._idle_bytes = 0
            self._lock.notify_all()
            return n

    def close(self) -> None:
        """Drop idle objects and refuse further use (``PoolError``)."""
        self.clear()
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        registry.unregister(self)

    def _check_open(self) -> None:
        if self._closed:
            raise PoolError(f"pool {self.name!r} is closed")

    def _after_fork(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._pending_lost = deque()


@dataclass
class _Resource:
    name: str
    obj: Any
    cleanup: Callable[[Any], object] | None
    lock: threading.Lock
    acquisitions: int = 0
    failures: int = 0
    timeouts: int = 0
    hold_total: float = 0.0
    hold_max: float = 0.0
    holder: int | None = None  # thread ident while acquired
    held_since: float | None = None
    kinds: dict[str, int] | None = None


def _cleanup_all(resources: dict[str, _Resource], owner: str) -> None:
    """Clean up resources nobody unregistered (manager collected or interpreter exit)."""
    if not resources:
        return
    names = sorted(resources)
    warnings.warn(
        f"ResourceManager {owner!r}: {len(names)} resource(s) never unregistered, cleaned up "
        f"now: {', '.join(names)}",
        ResourceWarning,
        stacklevel=2,
    )
    for name in names:
        res = resources.pop(name)
        if res.cleanup is not None:
            with contextlib.suppress(Exception):
                res.cleanup(res.obj)


class ResourceManager:
    """Named resources, one holder at a time, with statistics (see the module docstring).

    Resources still registered when the manager is collected, closed or the
    interpreter exits are cleaned up, with a ``ResourceWarning`` naming them.
    ``hold_warning`` seconds: an acquisition held longer is logged by
    :meth:`long_holds`.
    """

    kind = "resources"

    def __init__(self, name: str = "resources", hold_warning: float = 60.0) -> None:
        self.name = name
        self.hold_warning = hold_warning
        self._lock = threading.Lock()
        self._resources: dict[str, _Resource] = {}
        self._finalizer = weakref.finalize(self, _cleanup_all, self._resources, name)
        registry.register(self)

    def register_resource(
        self, name: str, obj: Any, cleanup: Callable[[Any], object] | None = None
    ) -> None:
        """Manage ``obj`` under ``name``; ``cleanup(obj)`` runs when it is unregistered."""
        with self._lock:
            if name in self._resources:
                raise ResourceError(
                    f"resource {name!r} is already registered; unregister_resource() it first"
                )
            self._resources[name] = _Resource(name, obj, cleanup, threading.Lock(), kinds={})

    def _get(self, name: str) -> _Resource:
        with self._lock:
            res = self._resources.get(name)
        if res is None:
            known = ", ".join(sorted(self._resources)) or "none"
            raise ResourceError(f"no resource {name!r} is registered (registered: {known})")
        return res

    @contextlib.contextmanager
    def acquire_resource(
        self, name: str, kind: str = "resource", timeout: float | None = 30.0
    ) -> Iterator[Any]:
        """Hold resource ``name`` for a block (``kind`` labels its statistics).

        Waits up to ``timeout`` seconds (``None``: forever) while another holder has it,
        then raises :class:`~memlens.core.errors.ResourceError`. Errors in the block,
        ``MemoryError`` included, are counted and propagate.
        """
        res = self._get(name)
        if res.holder == threading.get_ident():
            raise ResourceError(f"resource {name!r} is already held by this thread")
        if not res.lock.acquire(timeout=-1 if timeout is None else timeout):
            res.timeouts += 1
            raise ResourceError(
                f"resource {name!r} stayed busy for {timeout} s (held for "
                f"{time.monotonic() - (res.held_since or time.monotonic()):.1f} s)"
            )
        began = time.monotonic()
        res.holder, res.held_since = threading.get_ident(), began
        res.acquisitions += 1
        assert res.kinds is not None
        res.kinds[kind] = res.kinds.get(kind, 0) + 1
        try:
            yield res.obj
        except BaseException:
            res.failures += 1
            raise
        finally:
            held = time.monotonic() - began
            res.hold_total += held
            res.hold_max = max(res.hold_max, held)
            res.holder = res.held_since = None
            res.lock.release()

    def unregister_resource(self, name: str) -> None:
        """Stop managing ``name`` and run its cleanup (waits for a current holder)."""
        res = self._get(name)
        with res.lock:
            with self._lock:
                self._resources.pop(name, None)
            if res.cleanup is not None:
                try:
                    res.cleanup(res.obj)
                except Exception as exc:
                    raise ResourceError(
                        f"cleanup of resource {name!r} failed: {type(exc).__name__}: {exc}"
                    ) from exc

    def get_resource_stats(self, name: str | None = None) -> dict[str, Any]:
        """Acquisitions, failures, timeouts and hold times of one resource (or all by name)."""
        if name is None:
            with self._lock:
                names = sorted(self._resources)
            return {n: self.get_resource_stats(n) for n in names}
        res = self._get(name)
        now = time.monotonic()
        return {
            "name": res.name,
            "type": type(res.obj).__name__,
            "acquisitions": res.acquisitions,
            "failures": res.failures,
            "timeouts": res.timeouts,
            "hold_total_seconds": res.hold_total,
            "hold_max_seconds": res.hold_max,
            "in_use": res.holder is not None,
            "held_for_seconds": now - res.held_since if res.held_since is not None else 0.0,
            "by_kind": dict(res.kinds or {}),
        }

    def long_holds(self) -> list[tuple[str, float]]:
        """Resources held right now for longer than ``hold_warning`` seconds."""
        now = time.monotonic()
        with self._lock:
            resources = list(self._resources.values())
        return [
            (r.name, now - r.held_since)
            for r in resources
            if r.held_since is not None and now - r.held_since >= self.hold_warning
        ]

    def metrics(self) -> dict[str, float]:
        with self._lock:
            resources = list(self._resources.values())
        return {
            "acquisitions": float(sum(r.acquisitions for r in resources)),
            "failures": float(sum(r.failures for r in resources)),
            "timeouts": float(sum(r.timeouts for r in resources)),
            "hold": sum(r.hold_total for r in resources),
            "registered": float(len(resources)),
            "in_use": float(sum(1 for r in resources if r.holder is not None)),
        }

    def close(self) -> None:
        """Unregister every resource, running the cleanups (no warning: this is asked for)."""
        with self._lock:
            names = sorted(self._resources)
        for name in names:
            with contextlib.suppress(ResourceError):
                self.unregister_resource(name)
        self._finalizer.detach()
        registry.unregister(self)

    def __enter__(self) -> ResourceManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _after_fork(self) -> None:
        # Holds by threads that did not survive the fork can never be released.
        me = threading.get_ident()
        self._lock = threading.Lock()
        for res in self._resources.values():
            if res.holder != me:
                res.lock = threading.Lock()
                res.holder = res.held_since = None
