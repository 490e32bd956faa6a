"""A ContextVar created per request and set in the main thread's context."""

import contextvars

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_contextvar_per_request.py#value",
    "root": "context",
}


def handle(i: int) -> None:
    var: contextvars.ContextVar[list[str]] = contextvars.ContextVar(f"request-{i}")
    var.set([f"header-{k}" for k in range(10)])  # leak-site: value


def step(i: int) -> None:
    handle(i)
