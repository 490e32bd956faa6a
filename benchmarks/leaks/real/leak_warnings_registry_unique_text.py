"""A deprecation warning whose text names each record: the module's warnings registry
keeps one entry per distinct (text, category, line), so every record adds one."""

import warnings

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_warnings_registry_unique_text.py#warn",
    "root": "__warningregistry__",
}


def setup() -> None:
    warnings.simplefilter("default")
    warnings.showwarning = lambda *args, **kwargs: None  # keep the run's output quiet


def load_record(i: int) -> dict[str, int]:
    text = f"record {i}: field 'legacy_id' is deprecated, use 'id'"  # leak-site: warn
    warnings.warn(text, DeprecationWarning, stacklevel=1)
    return {"id": i}


def step(i: int) -> None:
    load_record(i)
