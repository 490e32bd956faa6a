"""Real HTTP requests to the endpoints, and `memlens top` against a real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from memlens.core.config import Config
from memlens.service import Monitor
from tests.service.helpers import MB


def get(url: str, token: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


@pytest.fixture
def served() -> Iterator[Monitor]:
    mon = Monitor(Config(mode="standard", persist_history=False, sampling_interval=0.05)).start()
    mon.serve_http()
    yield mon
    mon.stop()


def test_endpoints_over_real_http(served: Monitor) -> None:
    server = served.http_server
    assert server is not None and server.host == "127.0.0.1" and server.port > 0
    status, ctype, body = get(server.url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {
        "memlens_resident_memory_bytes",
        "memlens_gc_collections",
        "memlens_health_status",
    } <= names

    status, ctype, body = get(server.url + "/healthz")
    health = json.loads(body)
    assert status == 200 and ctype == "application/json"
    assert health["status"] == "ok" and health["checks"]["monitor_running"] is True

    status, _, body = get(server.url + "/debug/memory")
    data = json.loads(body)
    assert status == 200
    assert data["pid"] == os.getpid() and data["mode"] == "standard"
    assert data["readings"]["rss"] > MB
    assert {"trends", "leaks", "top_sites", "components", "gc", "health", "monitor"} <= set(data)
    assert data["trends"]["window_minutes"] == 10

    status, _, body = get(server.url + "/nope")
    assert status == 404


def test_healthz_is_503_when_critical() -> None:
    mon = Monitor(
        Config(
            mode="basic",
            persist_history=False,
            memory_warning_threshold_mb=1,
            memory_critical_threshold_mb=2,
        )
    ).start()
    try:
        server = mon.serve_http()
        status, _, body = get(server.url + "/healthz")
        assert status == 503
        assert json.loads(body)["status"] == "critical"
    finally:
        mon.stop()


def test_token_is_required_when_set() -> None:
    mon = Monitor(Config(mode="production", persist_history=False, http_token="s3cret")).start()
    try:
        server = mon.serve_http()
        for path in ("/metrics", "/healthz", "/debug/memory"):
            assert get(server.url + path)[0] == 401
            assert get(server.url + path, token="wrong")[0] == 401
            assert get(server.url + path, token="s3cret")[0] in (200, 503)
    finally:
        mon.stop()


def test_http_enabled_in_config_starts_the_server_and_stop_closes_it() -> None:
    mon = Monitor(Config(mode="production", persist_history=False, http_enabled=True)).start()
    server = mon.http_server
    assert server is not None
    url = server.url
    assert get(url + "/healthz")[0] == 200
    mon.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/healthz", timeout=5)


def test_port_in_use_is_a_config_error() -> None:
    from memlens.core.errors import ConfigError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        mon = Monitor(Config(mode="production", persist_history=False))
        with pytest.raises(ConfigError, match="http_port"):
            mon.serve_http(port=port)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "memlens", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, COLUMNS="120"),
    )


def test_top_once_against_a_real_server() -> None:
    mon = Monitor(
        Config(mode="standard", persist_history=False, http_token="tok", service_name="topsvc")
    ).start()
    try:
        url = mon.serve_http().url
        out = run_cli("top", url, "--once", "--token", "tok")
        assert out.returncode == 0, out.stderr
        assert "topsvc" in out.stdout and f"pid {os.getpid()}" in out.stdout
        assert "RSS" in out.stdout and "GC" in out.stdout
        denied = run_cli("top", url, "--once")
        assert denied.returncode != 0
        assert "401" in denied.stderr and "--token" in denied.stderr
        assert len(denied.stderr.strip().splitlines()) == 1
    finally:
        mon.stop()


def test_top_unreachable_url_is_one_line_and_nonzero() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again once the block ends: nobody listens
    out = run_cli("top", f"127.0.0.1:{port}", "--once")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach" in lines[0]
    for url in ("ftp://x", "not a url", "http://[::1", "http://127.0.0.1:99999", ""):
        bad = run_cli("top", url, "--once")
        assert bad.returncode == 2, (url, bad.stderr)
        (line,) = bad.stderr.strip().splitlines()
        assert line.startswith("memlens: error: invalid URL"), line
        assert "Traceback" not in bad.stderr
