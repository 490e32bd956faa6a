"""The one findings vocabulary: what was found, how much, where, what holds it, why, the fix.

Every analysis that finds a problem — the leak doctor, the context diagnosis, the
monitor's leak alerts, the deep dives — reports it as a :class:`Finding` inside a
:class:`Diagnosis`, so every face renders, stores and exports one shape.

A producer that has more to say subclasses them with typed fields of its own (the
doctor's ``bytes_per_iteration`` and ``p_value``, the context diagnosis's
``symptom``); those are its *domain details*. Free-form extras go in ``details``.

JSON (``to_dict``/``from_dict``) is lossless for the subclass that wrote it and
carries ``schema_version`` on the diagnosis. Version 1 is the unversioned shape
memlens wrote before this module existed; ``from_dict`` still reads it (each
producer upgrades its own old keys in ``_upgrade``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from memlens.core.record import asdict as record_asdict
from memlens.core.record import is_record

#: Version of the JSON written by ``Diagnosis.to_dict``; data without one is version 1.
SCHEMA_VERSION = 2

BYTES = "bytes"
TOKENS = "tokens"
UNITS = (BYTES, TOKENS)

#: Severities, mildest first.
SEVERITIES = ("low", "medium", "high", "critical")


def worst(severities: Iterable[str]) -> str:
    """The most severe of ``severities`` (``"none"`` when there are none)."""
    found = [s for s in severities if s in SEVERITIES]
    return max(found, key=SEVERITIES.index) if found else "none"


@dataclass
class Remedy:
    """One way to fix a finding; a finding lists them best first."""

    title: str
    snippet: str = ""  # code to paste, if any
    effort: str = ""  # "5 min", "30 min", …
    saving: float = 0.0  # what the fix is estimated to free, in ``unit``
    unit: str = BYTES

    @property
    def frees_bytes(self) -> int:
        """The estimated saving in bytes (0 for a saving in tokens)."""
        return int(self.saving) if self.unit == BYTES else 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Remedy:
        data = dict(data)
        if "frees_bytes" in data and "saving" not in data:  # version 1 (the doctor's)
            data["saving"] = data.pop("frees_bytes")
        return cls(**_known(cls, data))


@dataclass
class Hop:
    """One edge of a retained-by path: ``label`` says how ``type_name`` is reached."""

    label: str
    type_name: str = ""
    detail: str = ""  # e.g. "dict, 12,034 entries"


@dataclass
class Finding:
    """One problem: what, how much, where, what holds it, why, and how to fix it."""

    category: str  # machine name of the kind of problem ("growing_collection", "large_items")
    site: str = ""  # where in code ("path/to/file.py:53"), when there is a where
    severity: str = "high"  # one of SEVERITIES
    summary: str = ""  # one line for people
    amount: float = 0.0  # how much, in ``unit`` (per ``per`` when it is a rate)
    unit: str = BYTES  # "bytes" or "tokens"
    per: str = ""  # "" for a standing amount; "iteration", "second" for a rate
    items: list[str] = field(default_factory=list)  # the items concerned (context)
    root: str = ""  # what ultimately holds it, in short
    path: list[Hop] = field(default_factory=list)  # retained-by path, root first
    why: str = ""
    remedies: list[Remedy] = field(default_factory=list)  # best first
    evidence: dict[str, Any] = field(default_factory=dict)  # figures and signals behind it
    details: dict[str, Any] = field(default_factory=dict)  # free-form domain extras

    @property
    def kind(self) -> str:
        return self.category

    # -- serialization -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the shared keys, then the subclass's own fields, flat."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "path":
                value = [dataclasses.asdict(h) for h in value]
            elif f.name == "remedies":
                value = [r.to_dict() for r in value]
            elif (
                dataclasses.is_dataclass(value)
                or is_record(value)
                or isinstance(value, (list, dict))
            ):
                value = _plain(value)
            out[f.name] = value
        return out

    @classmethod
    def _upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Rename a producer's version-1 keys to the current ones (subclasses extend)."""
        return data

    @classmethod
    def from_dict(cls: type[F], data: Mapping[str, Any]) -> F:
        """Read what ``to_dict`` wrote (this version or 1); unknown keys are ignored."""
        values = cls._upgrade(dict(data))
        values["path"] = [
            h if isinstance(h, Hop) else Hop(**_known(Hop, h)) for h in values.get("path", [])
        ]
        values["remedies"] = [
            r if isinstance(r, Remedy) else Remedy.from_dict(r) for r in values.get("remedies", [])
        ]
        return _build(cls, values)


F = TypeVar("F", bound=Finding)


@dataclass
class Diagnosis(Generic[F]):
    """The envelope: the verdict on one target and the findings behind it."""

    target: str = ""  # what was examined: a program, a transcript, a service
    verdict: str = ""  # the producer's one-word answer ("leak", "no leak", a severity)
    reason: str = ""  # why that verdict, in one line
    findings: list[F] = field(default_factory=list)  # worst or biggest first
    duration: float = 0.0  # seconds the analysis took
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    #: The Finding class this diagnosis reads its findings as.
    finding_type: ClassVar[type[Finding]] = Finding

    @property
    def severity(self) -> str:
        """The worst finding's severity (``"none"`` when nothing was found)."""
        return worst(f.severity for f in self.findings)

    # -- serialization -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "findings":
                value = [x.to_dict() for x in value]
            elif isinstance(value, (list, dict)):
                value = _plain(value)
            out[f.name] = value
        return out

    @classmethod
    def _upgrade(cls, data: dict[str, Any], version: int) -> dict[str, Any]:
        """Rename a producer's older keys (``version`` < current) to today's."""
        return data

    @classmethod
    def from_dict(cls: type[D], data: Mapping[str, Any]) -> D:
        """Read what ``to_dict`` wrote (this version or the unversioned 1)."""
        values = dict(data)
        version = values.pop("schema_version", 1)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            # A newer memlens wrote it: read what we know, as for unknown keys.
            version = SCHEMA_VERSION
        values = cls._upgrade(values, version)
        values["findings"] = [
            cls.finding_type.from_dict(x) for x in values.get("findings", []) or []
        ]
        return _build(cls, values)

    def to_json(self, indent: int | None = 2) -> str:
        import json  # here: the always-on monitor imports this module but never needs json

        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls: type[D], text: str) -> D:
        import json

        return cls.from_dict(json.loads(text))


D = TypeVar("D", bound=Diagnosis[Any])


def _known(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    # Ignore keys written by a newer memlens so old readers keep working.
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def _build(cls: type[Any], values: Mapping[str, Any]) -> Any:
    """An instance from field values, bypassing a subclass's convenience ``__init__``."""
    obj = object.__new__(cls)
    for f in dataclasses.fields(cls):
        if f.name in values:
            value = values[f.name]
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            raise ValueError(f"{cls.__name__}: missing {f.name!r}")
        object.__setattr__(obj, f.name, value)
    return obj


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if is_record(value):  # memlens.core.record value classes (AllocationSite, Trend…)
        return record_asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


__all__ = [
    "BYTES",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "TOKENS",
    "UNITS",
    "Diagnosis",
    "Finding",
    "Hop",
    "Remedy",
    "worst",
]
