"""Graceful recycling under real servers: gunicorn replaces the worker, uvicorn exits cleanly."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("gunicorn")
pytest.importorskip("uvicorn")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX servers")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()


def wait_for(url: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited early:\n{proc.stdout.read() if proc.stdout else ''}"
            )
        try:
            return get(url, timeout=2)
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return out


def serve(
    args: list[str], cwd: Path, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``python -m <server> ...`` in ``cwd`` with its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env={**env(), **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


WSGI_APP = """
import os
LADDER = None

def app(environ, start_response):
    if environ["PATH_INFO"] == "/recover":
        run = LADDER.run("test", target_bytes=1)  # never reachable: every step, then recycle
        body = run.outcome
    else:
        body = str(os.getpid())
    data = body.encode()
    start_response("200 OK", [("Content-Length", str(len(data)))])
    return [data]
"""

GUNICORN_CONF = """
import app
from memlens.remedies.ladder import RecoveryLadder
from memlens.remedies.recycle import gunicorn_hook

bind = "127.0.0.1:{port}"
workers = 1
graceful_timeout = 10

def post_worker_init(worker):
    app.LADDER = RecoveryLadder(min_interval=0)
    app.LADDER.set_recycle_hook(gunicorn_hook(worker))
"""


def test_gunicorn_worker_finishes_its_request_and_is_replaced(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "app.py").write_text(WSGI_APP)
    (tmp_path / "gunicorn.conf.py").write_text(GUNICORN_CONF.format(port=port))
    proc = serve(["gunicorn", "-c", "gunicorn.conf.py", "app:app"], tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        first = int(wait_for(base + "/pid", proc))
        outcome = get(base + "/recover")  # the in-flight request is answered
        assert "recycle requested" in outcome
        deadline = time.monotonic() + 30
        second = first
        while second == first and time.monotonic() < deadline:
            try:
                second = int(get(base + "/pid", timeout=2))
            except OSError:
                time.sleep(0.1)
        assert second != first  # the arbiter replaced the worker
        assert proc.poll() is None  # and the master is still serving
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "recycling worker" in out or "Worker exiting" in out, out


ASGI_APP = """
from memlens.remedies.ladder import RecoveryLadder
from memlens.remedies.recycle import uvicorn_hook

LADDER = RecoveryLadder(min_interval=0)
LADDER.set_recycle_hook(uvicorn_hook())  # SIGTERM to this process: uvicorn's graceful exit

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/recover":
        body = LADDER.run("test", target_bytes=1).outcome.encode()
    else:
        body = b"ok"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
"""


def test_uvicorn_answers_in_flight_requests_then_exits_cleanly(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "asgi.py").write_text(textwrap.dedent(ASGI_APP))
    proc = serve(["uvicorn", "asgi:app", "--port", str(port), "--no-access-log"], tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for(base + "/", proc) == "ok"
        assert "recycle requested" in get(base + "/recover")
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        out = proc.stdout.read() if proc.stdout else ""
    # uvicorn re-raises the signal once shut down, so a supervisor sees why it stopped.
    assert code in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out and "Finished server process" in out, out


LEAKY_APP = """
import os
HELD = []

def app(environ, start_response):
    if environ["PATH_INFO"] == "/grow":
        block = bytearray(300 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])  # resident, not just reserved
        HELD.append(block)  # a leak the ladder's cheap steps cannot free
    data = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Length", str(len(data)))])
    return [data]
"""

READY_MADE_CONF = """
from memlens.remedies.recycle import gunicorn_post_worker_init as post_worker_init

bind = "127.0.0.1:{port}"
workers = 1
"""


def test_ready_made_gunicorn_hook_recycles_a_worker_over_the_threshold(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "app.py").write_text(LEAKY_APP)
    (tmp_path / "gunicorn.conf.py").write_text(READY_MADE_CONF.format(port=port))
    config = {
        "MEMLENS_MODE": "production",
        "MEMLENS_SAMPLING_INTERVAL": "0.1",
        "MEMLENS_MEMORY_WARNING_THRESHOLD_MB": "150",
        "MEMLENS_MEMORY_CRITICAL_THRESHOLD_MB": "250",
        "MEMLENS_PERSIST_HISTORY": "0",
        "MEMLENS_ENABLE_LEAK_DETECTION": "0",
    }
    proc = serve(["gunicorn", "-c", "gunicorn.conf.py", "app:app"], tmp_path, config)
    try:
        base = f"http://127.0.0.1:{port}"
        first = int(wait_for(base + "/pid", proc))
        assert int(get(base + "/grow")) == first  # answered before the worker goes
        deadline = time.monotonic() + 60
        second = first
        while second == first and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                second = int(get(base + "/pid", timeout=2))
            time.sleep(0.1)
        assert second != first, "the worker over the critical threshold was not recycled"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "recovery (critical threshold" in out and "recycling worker" in out, out
