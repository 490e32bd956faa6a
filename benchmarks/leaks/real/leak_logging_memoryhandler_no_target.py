"""A logging MemoryHandler with capacity=5000 and no target: its flush() clears the
buffer only when a target is set, so the capacity bounds nothing and every record
(with its arguments) stays in the handler's buffer."""

import logging
import logging.handlers

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_logging_memoryhandler_no_target.py#record",
    "root": "buffered",
}

log = logging.getLogger("audit.buffered")
log.propagate = False
log.setLevel(logging.INFO)
# The target was meant to be set once the audit sink is up; it never is.
buffered = logging.handlers.MemoryHandler(capacity=5000, flushLevel=logging.CRITICAL)
log.addHandler(buffered)


def step(i: int) -> None:
    log.info("order %d accepted for %s", i, f"customer-{i:06d}")  # leak-site: record
