"""structlog.contextvars bound with a key per order: structlog keeps a ContextVar per key."""

import structlog

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_structlog_dynamic_keys.py#bind",
    "root": "_CONTEXT_VARS",
}


def step(i: int) -> None:
    structlog.contextvars.bind_contextvars(**{f"order_{i}_state": "open"})  # leak-site: bind
    structlog.contextvars.clear_contextvars()
