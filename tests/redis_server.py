"""A real ``redis-server`` for tests: started on a free port in a temp dir, killed after.

Tests that use it carry ``@pytest.mark.redis`` and are skipped when the binary is
missing, except where ``MEMLENS_REQUIRE_REDIS`` is set (the test script sets it),
where they fail instead. :class:`RedisServer` can also be stopped and restarted on
the same port and data directory, for outage and restart-mid-sync tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def require_redis() -> str:
    """The binary's path, or skip (fail under ``MEMLENS_REQUIRE_REDIS``)."""
    found = redis_binary()
    if found:
        return found
    if os.environ.get("MEMLENS_REQUIRE_REDIS"):
        pytest.fail("redis-server is required (MEMLENS_REQUIRE_REDIS is set) but not installed")
    pytest.skip("redis-server is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """One redis-server process bound to 127.0.0.1 with its data in ``directory``."""

    def __init__(self, binary: str, directory: Path, *, appendonly: bool = True) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def isolated_url(self) -> str:
        """A URL with a fresh key prefix, so tests sharing the server don't see each other."""
        return f"{self.url}?prefix=t{uuid.uuid4().hex[:12]}"

    def start(self) -> None:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--protected-mode",
            "no",
        ]
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited: {(self.directory / 'redis.log').read_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING within 20 s")

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self.process = None

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()
