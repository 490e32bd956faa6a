"""The result of a profiling run: a plain, serializable :class:`Session`.

A session is data only: samples over time (a :class:`~memlens.core.series.Series`),
summary figures, the top allocation sites, GC statistics, per-component memory and
metadata. Analyses add their results under ``analyses`` (for example the leak
doctor's diagnosis under ``"doctor"``); faces render it; stores save it.
``Session.from_dict(s.to_dict()) == s`` always holds.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from memlens.core.record import asdict, field, fields, is_record, record
from memlens.core.redact import redact_argv
from memlens.core.series import Series

SCHEMA = 1

# Session.status values.
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"  # the profiled code raised
INTERRUPTED = "interrupted"  # Ctrl-C / KeyboardInterrupt
STATUSES = (RUNNING, COMPLETED, FAILED, INTERRUPTED)


# socket, uuid, platform, json and copy are imported where used: the always-on
# monitor imports this module but rarely needs them (its footprint budget, #15).
def new_session_id() -> str:
    """A short, sortable-enough unique id: UTC date + 8 hex digits."""
    import uuid

    return time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:8]


def utc_now_iso() -> str:
    """Now, as ``datetime.now(timezone.utc).isoformat(timespec="microseconds")`` says it
    (without importing datetime: the monitor's footprint)."""
    seconds, ns = divmod(time.time_ns(), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns // 1000:06d}+00:00"


def _python_version() -> str:
    return sys.version.split()[0]  # what platform.python_version() parses out


def _implementation() -> str:
    name = sys.implementation.name
    return {"cpython": "CPython", "pypy": "PyPy"}.get(name, name)


def _platform_name() -> str:
    """``Linux-6.1.0-x86_64-with-glibc2.36``, read from ``os.uname()``.

    ``platform.platform()`` says the same but imports ``subprocess`` (0.6 MiB) to get
    there, which the always-on monitor cannot afford (#15).
    """
    uname = getattr(os, "uname", None)
    if uname is None:  # Windows
        import platform

        return platform.platform()
    u = uname()
    try:
        libc = (os.confstr("CS_GNU_LIBC_VERSION") or "").replace(" ", "")
    except (AttributeError, ValueError, OSError):
        libc = ""
    return "-".join([u.sysname, u.release, u.machine, *(["with", libc] if libc else [])])


def _hostname() -> str:
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename)  # what socket.gethostname() returns on POSIX
    import socket

    return socket.gethostname()


@record
class Metadata:
    """Where and when a session ran."""

    python: str = field(default_factory=_python_version)
    implementation: str = field(default_factory=_implementation)
    platform: str = field(default_factory=_platform_name)
    pid: int = field(default_factory=os.getpid)
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    host: str = field(default_factory=_hostname)
    started_at: str = field(default_factory=utc_now_iso)
    ended_at: str | None = None

    def __post_init__(self) -> None:
        # secrets on the command line never reach the store or a report
        self.argv = redact_argv(self.argv)


@record
class AllocationSite:
    """Memory allocated at one line of the user's code, attributed to a component.

    ``size``/``count`` are live at the end; ``size_diff``/``count_diff`` are the
    change since the session started. ``stack`` is the call chain into user code,
    innermost first, as ``"file:line in function"`` strings.
    """

    filename: str
    lineno: int
    function: str = ""
    size: int = 0
    count: int = 0
    size_diff: int = 0
    count_diff: int = 0
    component: str | None = None
    stack: list[str] = field(default_factory=list)

    @property
    def location(self) -> str:
        return f"{self.filename}:{self.lineno}"


@record
class GcGenerationStats:
    """Garbage-collector activity in one generation during the session."""

    generation: int
    collections: int = 0
    collected: int = 0
    uncollectable: int = 0
    pause_total: float = 0.0
    pause_max: float = 0.0
    # Upper bounds (seconds) -> count of pauses at or below it; see heap.gc_meter.
    pause_histogram: dict[str, int] = field(default_factory=dict)


@record
class ComponentUsage:
    """Traced memory attributed to one named component (module or path prefix)."""

    name: str
    current: int = 0
    peak: int = 0
    growth: int = 0
    count: int = 0


@record
class Session:
    """A profiling run's results; see the module docstring."""

    name: str
    id: str = field(default_factory=new_session_id)
    description: str = ""
    kind: str = "profile"  # profile | run | doctor | monitor | …
    status: str = RUNNING
    interval: float = 0.1
    duration: float = 0.0
    traced: bool = True
    trace_depth: int = 0
    series: Series = field(default_factory=Series)
    peak_rss: int = 0
    final_rss: int = 0
    start_rss: int = 0
    peak_traced: int = 0  # the highest traced total during the session
    final_traced: int = 0
    start_traced: int = 0
    top_sites: list[AllocationSite] = field(default_factory=list)
    gc: list[GcGenerationStats] = field(default_factory=list)
    components: list[ComponentUsage] = field(default_factory=list)
    metadata: Metadata = field(default_factory=Metadata)
    exit_code: int | None = None
    error: str | None = None  # "ExceptionType: message" when the profiled code raised
    analyses: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def growth(self) -> int:
        """RSS at the end minus RSS at the start, in bytes."""
        return self.final_rss - self.start_rss

    @property
    def peak_traced_growth(self) -> int:
        """How far traced memory rose above its start at the peak: what the code held at
        its worst moment, freed or not by the end."""
        return max(0, self.peak_traced - self.start_traced)

    # -- serialization -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        import copy

        # Not asdict(self): it would deep-copy the series' buffers only to replace them.
        data = {name: getattr(self, name) for name in fields(self)}
        for name, value in data.items():
            if isinstance(value, list):
                data[name] = [asdict(v) if is_record(v) else v for v in value]
        data["metadata"] = asdict(self.metadata)
        data["analyses"] = copy.deepcopy(self.analyses)
        data["tags"] = dict(self.tags)
        data["series"] = self.series.to_dict()
        data["schema"] = SCHEMA
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        data = dict(data)
        schema = data.pop("schema", SCHEMA)
        if schema > SCHEMA:
            raise ValueError(f"session schema {schema} is newer than this memlens ({SCHEMA})")
        data["series"] = Series.from_dict(data["series"])
        data["top_sites"] = [AllocationSite(**s) for s in data.get("top_sites", [])]
        data["gc"] = [GcGenerationStats(**g) for g in data.get("gc", [])]
        data["components"] = [ComponentUsage(**c) for c in data.get("components", [])]
        data["metadata"] = Metadata(**data.get("metadata", {}))
        return cls(**data)

    def to_json(self, indent: int | None = None) -> str:
        import json

        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Session:
        import json

        return cls.from_dict(json.loads(text))
