"""structlog loggers bound per request with fixed keys and per-request values."""

import structlog

EXPECTED = {"leak": False}

structlog.configure(
    processors=[structlog.contextvars.merge_contextvars, structlog.processors.JSONRenderer()],
    logger_factory=structlog.ReturnLoggerFactory(),
    cache_logger_on_first_use=True,
)
log = structlog.get_logger()


def step(i: int) -> None:
    structlog.contextvars.bind_contextvars(request_id=f"req-{i}")
    log.bind(user=f"user-{i}").info("handled", items=i % 10)
    structlog.contextvars.clear_contextvars()
