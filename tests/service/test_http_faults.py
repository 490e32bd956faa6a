"""The endpoints under faults, over real sockets (issue #14): aborted scrapes print
nothing, silent connections are closed, the handler threads are bounded, a slow client
blocks no one, and ``/debug/memory`` is rate-limited with a 429."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from memlens.core.config import Config
from memlens.service import Monitor
from memlens.service.http import MonitorServer


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait_for(condition, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def server() -> Iterator[MonitorServer]:
    monitor = Monitor(Config(mode="production", persist_history=False)).start()
    srv = MonitorServer(monitor, read_timeout=0.5, max_handlers=8, debug_rate=1.0, debug_burst=3)
    srv.start()
    yield srv
    srv.stop()
    monitor.stop()


def _handler_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("Thread-") and t.daemon)


def test_idle_sockets_are_bounded_and_released(server: MonitorServer) -> None:
    before = threading.active_count()
    sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
    try:
        time.sleep(0.2)
        # at most max_handlers threads, whatever the number of connections
        assert threading.active_count() - before <= 8
        # a plain request still gets an answer once the silent ones time out
        assert _status(server.url + "/healthz") in (200, 503)
    finally:
        for s in sockets:
            s.close()
    assert _wait_for(lambda: threading.active_count() - before <= 1)
    print(f"\n300 idle sockets: threads +{threading.active_count() - before} after release")


def test_slow_client_does_not_block_another_request(server: MonitorServer) -> None:
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    try:
        assert _status(server.url + "/metrics") == 200
    finally:
        slow.close()


def test_debug_endpoint_is_rate_limited(server: MonitorServer) -> None:
    codes = [_status(server.url + "/debug/memory") for _ in range(20)]
    assert codes[:3] == [200, 200, 200]
    assert 429 in codes
    assert codes.count(200) < 20
    # the cheap endpoints are not limited
    assert all(_status(server.url + "/healthz") in (200, 503) for _ in range(20))
    assert _wait_for(lambda: _status(server.url + "/debug/memory") == 200, 10)


SERVE = textwrap.dedent(
    """
    import sys, time
    from memlens.core.config import Config
    from memlens.service import Monitor
    from memlens.service.http import MonitorServer
    monitor = Monitor(Config(mode="production", persist_history=False)).start()
    server = MonitorServer(monitor, read_timeout=0.5)
    server.start()
    print(server.port, flush=True)
    time.sleep(600)
    """
)


def test_aborted_scrapes_and_resets_print_nothing(tmp_path: Path) -> None:
    script = tmp_path / "serve.py"
    script.write_text(SERVE)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for number in range(200):
            s = socket.create_connection(("127.0.0.1", port))
            path = ("/metrics", "/debug/memory", "/healthz")[number % 3]
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            # close with RST (linger 0) before reading the answer
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"GET /metrics HTTP/1.1\r\n")
        time.sleep(1.0)  # past the read timeout: closed by the server
        half.close()
        assert _status(f"http://127.0.0.1:{port}/metrics") == 200
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(stderr.encode()) < 1000, stderr[-3000:]


def test_many_concurrent_requests_are_all_answered() -> None:
    """What already held (keep it so): 2,000 requests from 20 threads, every one
    answered, none refused, with the default handler bound."""
    monitor = Monitor(Config(mode="production", persist_history=False)).start()
    srv = MonitorServer(monitor)
    srv.start()
    statuses: list[int] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        for i in range(100):
            path = "/metrics" if i % 2 else "/healthz"
            status = _status(f"{srv.url}{path}")
            with lock:
                statuses.append(status)

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        srv.stop()
        monitor.stop()
    assert len(statuses) == 2000
    assert set(statuses) == {200}


def test_top_in_a_pipe_prints_each_view(tmp_path: Path) -> None:
    """``memlens top URL`` (live mode) with stdout not a terminal prints a view per
    refresh instead of nothing."""
    monitor = Monitor(
        Config(mode="production", persist_history=False, service_name="pipesvc")
    ).start()
    try:
        url = monitor.serve_http().url
        proc = subprocess.Popen(
            [sys.executable, "-m", "memlens", "top", url, "--interval", "0.2"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            views = 0
            for line in proc.stdout:
                views += "pipesvc" in line
                if views >= 2:
                    break
            assert views >= 2, proc.stderr.read() if proc.stderr else ""
        finally:
            proc.kill()
            proc.communicate(timeout=30)
    finally:
        monitor.stop()
