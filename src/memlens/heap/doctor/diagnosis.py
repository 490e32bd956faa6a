"""The doctor's result: a :class:`Diagnosis` made of :class:`Finding` s.

Both are the shared vocabulary of :mod:`memlens.core.findings` with the doctor's
domain details as typed fields. The JSON round trip is lossless
(``Diagnosis.from_dict(d.to_dict()) == d``) and reads diagnoses stored before the
schema was versioned, so a diagnosis can live in a
:class:`~memlens.core.session.Session` and be rendered later by any face.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from memlens.core import findings as core
from memlens.core.findings import BYTES, Hop, Remedy

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
    "pool_leak": "pool leak (borrowed, never returned)",
    "other": "other",
}


@dataclass(init=False)
class Finding(core.Finding):
    """One leak: where it is allocated, what holds it, why, and how to fix it.

    ``amount`` is the growth in bytes per iteration (also ``bytes_per_iteration``);
    the fields below are the doctor's domain details.
    """

    function: str = ""
    stack: list[str] = field(default_factory=list)  # innermost first, "file:line in fn"
    source: str = ""  # the source line at ``site``
    objects_per_iteration: float = 0.0
    type_name: str = ""  # dominant type of the leaked objects
    growth_bytes: int = 0  # observed over the measured iterations
    start_bytes: int = 0  # process (or traced) level at the first checkpoint
    end_bytes: int = 0
    library: str | None = None  # third-party library on the retaining path
    public_call: str | None = None  # the library call the user made
    p_value: float = 1.0
    samples: int = 0  # leaked objects whose retaining path was traced
    related_sites: list[str] = field(default_factory=list)

    def __init__(
        self,
        category: str,
        site: str,
        function: str = "",
        stack: list[str] | None = None,
        source: str = "",
        bytes_per_iteration: float = 0.0,
        objects_per_iteration: float = 0.0,
        type_name: str = "",
        growth_bytes: int = 0,
        start_bytes: int = 0,
        end_bytes: int = 0,
        root: str = "",
        path: list[Hop] | None = None,
        why: str = "",
        remedies: list[Remedy] | None = None,
        library: str | None = None,
        public_call: str | None = None,
        p_value: float = 1.0,
        samples: int = 0,
        related_sites: list[str] | None = None,
        evidence: list[str] | None = None,  # the signals that saw it
    ) -> None:
        super().__init__(
            category=category,
            site=site,
            severity="high",
            amount=bytes_per_iteration,
            unit=BYTES,
            per="iteration",
            root=root,
            path=list(path or []),
            why=why,
            remedies=list(remedies or []),
            evidence={"signals": list(evidence or [])},
        )
        self.function = function
        self.stack = list(stack or [])
        self.source = source
        self.objects_per_iteration = objects_per_iteration
        self.type_name = type_name
        self.growth_bytes = growth_bytes
        self.start_bytes = start_bytes
        self.end_bytes = end_bytes
        self.library = library
        self.public_call = public_call
        self.p_value = p_value
        self.samples = samples
        self.related_sites = list(related_sites or [])

    @property
    def bytes_per_iteration(self) -> float:
        return self.amount

    @bytes_per_iteration.setter
    def bytes_per_iteration(self, value: float) -> None:
        self.amount = value

    @property
    def signals(self) -> list[str]:
        """The growth signals that saw this leak ("site", "container", "native", …)."""
        return list(self.evidence.get("signals", []))

    @property
    def category_label(self) -> str:
        return CATEGORIES.get(self.category, self.category)

    @classmethod
    def _upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        # Version 1 wrote the rate as bytes_per_iteration and evidence as a list.
        if "bytes_per_iteration" in data and "amount" not in data:
            data["amount"] = data.pop("bytes_per_iteration")
            data.setdefault("per", "iteration")
        if isinstance(data.get("evidence"), list):
            data["evidence"] = {"signals": data["evidence"]}
        return data


@dataclass
class Diagnosis(core.Diagnosis[Finding]):
    """The doctor's verdict on one target (``target`` is what was run)."""

    iterations: int = 0  # total step calls, warm-up included
    warmup: int = 0
    checkpoints: int = 0
    gc_enabled: bool = True
    budget: float = 0.0
    max_iterations: int = 0
    horizon: int = 10_000  # iterations used for "frees ≈ X" estimates
    rss_start: int = 0
    rss_end: int = 0
    malloc_available: bool = False

    finding_type: ClassVar[type[core.Finding]] = Finding

    @property
    def leaked(self) -> bool:
        return self.verdict == LEAK


__all__ = [
    "CATEGORIES",
    "INCONCLUSIVE",
    "LEAK",
    "NO_LEAK",
    "VERDICTS",
    "Diagnosis",
    "Finding",
    "Hop",
    "Remedy",
]
