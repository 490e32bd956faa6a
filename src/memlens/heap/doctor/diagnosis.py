"""The doctor's result: a :class:`Diagnosis` made of :class:`Finding` s.

Plain dataclasses with a lossless JSON round trip
(``Diagnosis.from_dict(d.to_dict()) == d``), so a diagnosis can live in a
:class:`~memlens.core.session.Session` and be rendered later by any face.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

# Verdicts.
LEAK = "leak"
NO_LEAK = "no leak"
INCONCLUSIVE = "inconclusive"
VERDICTS = (LEAK, NO_LEAK, INCONCLUSIVE)

# Categories (machine names) and their human labels, in the order.
CATEGORIES: dict[str, str] = {
    "growing_collection": "growing collection",
    "unbounded_memo": "unbounded memo",
    "listener": "listener/callback not removed",
    "cached_instances": "cached instances (lru_cache holding self)",
    "stored_traceback": "stored traceback/frames",
    "closure_registry": "closure registry",
    "thread_local": "thread-local",
    "gc_disabled_cycles": "reference cycles with GC disabled",
    "native": "native (outside Python objects)",
    "other": "other",
}


@dataclass
class Remedy:
    """One way to fix a finding, best first in :attr:`Finding.remedies`."""

    title: str
    snippet: str = ""
    effort: str = ""  # "5 min", "30 min", …
    frees_bytes: int = 0  # memory the fix frees per ``Diagnosis.horizon`` iterations


@dataclass
class Hop:
    """One edge of a retaining path: ``label`` describes how ``type_name`` is reached."""

    label: str
    type_name: str
    detail: str = ""  # e.g. "dict, 12,034 entries"


@dataclass
class Finding:
    """One leak: where it is allocated, what holds it, why, and how to fix it."""

    category: str
    site: str  # "path/to/file.py:53" (innermost frame in user code)
    function: str = ""
    stack: list[str] = field(default_factory=list)  # innermost first, "file:line in fn"
    source: str = ""  # the source line at ``site``
    bytes_per_iteration: float = 0.0
    objects_per_iteration: float = 0.0
    type_name: str = ""  # dominant type of the leaked objects
    growth_bytes: int = 0  # observed over the measured iterations
    start_bytes: int = 0  # process (or traced) level at the first checkpoint
    end_bytes: int = 0
    root: str = ""  # short name of the named root, e.g. "module app.cache → global _cache"
    path: list[Hop] = field(default_factory=list)  # root first, leaked object last
    why: str = ""
    remedies: list[Remedy] = field(default_factory=list)
    library: str | None = None  # third-party library on the retaining path
    public_call: str | None = None  # the library call the user made
    p_value: float = 1.0
    samples: int = 0  # leaked objects whose retaining path was traced
    related_sites: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # signals that saw it

    @property
    def category_label(self) -> str:
        return CATEGORIES.get(self.category, self.category)


@dataclass
class Diagnosis:
    """The doctor's verdict on one target."""

    target: str
    verdict: str
    reason: str = ""
    findings: list[Finding] = field(default_factory=list)
    iterations: int = 0  # total step calls, warm-up included
    warmup: int = 0
    checkpoints: int = 0
    duration: float = 0.0  # seconds
    gc_enabled: bool = True
    budget: float = 0.0
    max_iterations: int = 0
    horizon: int = 10_000  # iterations used for "frees ≈ X" estimates
    rss_start: int = 0
    rss_end: int = 0
    malloc_available: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def leaked(self) -> bool:
        return self.verdict == LEAK

    # -- serialization -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        data = dict(data)
        findings = []
        for raw in data.pop("findings", []):
            raw = dict(raw)
            raw["path"] = [Hop(**h) for h in raw.get("path", [])]
            raw["remedies"] = [Remedy(**r) for r in raw.get("remedies", [])]
            findings.append(Finding(**_known(Finding, raw)))
        return cls(findings=findings, **_known(cls, data))

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Diagnosis:
        return cls.from_dict(json.loads(text))


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    # Ignore keys written by a newer memlens so old readers keep working.
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}
