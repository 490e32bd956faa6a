"""logging.getLogger() with a name per request: the logging manager keeps every logger."""

import logging

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_logging_logger_per_request.py#logger",
    "root": "loggerDict",
}


def step(i: int) -> None:
    log = logging.getLogger(f"app.request.{i}")  # leak-site: logger
    log.debug("handled")
