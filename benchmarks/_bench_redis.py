"""A real redis-server for a benchmark run, started in a scratch folder and stopped after."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def redis_url(directory: Path) -> Iterator[str]:
    """Start Debian's redis-server in ``directory``; yield its URL; stop it on exit."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.redis_server import RedisServer, redis_binary

    binary = redis_binary()
    if binary is None:
        raise SystemExit("redis-server is not installed")
    server = RedisServer(binary, directory)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
