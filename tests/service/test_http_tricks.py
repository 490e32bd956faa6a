"""What already holds for the endpoints, kept so with tests (#14): the token guards
every path however it is spelled, path tricks reach nothing but the four
endpoints, and malformed requests get a 4xx (or a closed connection) without a
traceback while the server keeps serving."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest

from memlens.core.config import Config
from memlens.service import Monitor
from tests.service.test_http import get

TOKEN = "s3cret-token"
TRICKS = [
    "/debug/memory/../metrics",
    "/metrics/../debug/memory",
    "//debug//memory",
    "/./debug/memory",
    "/DEBUG/MEMORY",
    "/debug/memory%00",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/../../../../etc/passwd",
    "/debug/memory;x",
    "/metrics?x=../../etc/passwd",
]


@pytest.fixture
def guarded() -> Iterator[str]:
    mon = Monitor(Config(mode="production", persist_history=False, http_token=TOKEN)).start()
    try:
        server = mon.serve_http()
        assert server.host == "127.0.0.1"  # loopback by default
        yield server.url
    finally:
        mon.stop()


def _raw(url: str, payload: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(payload)
        chunks = []
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def test_the_token_guards_every_spelling_of_every_path(guarded: str) -> None:
    for path in [*TRICKS, "/metrics", "/healthz", "/debug/memory", "/"]:
        assert get(guarded + path)[0] == 401, path
        assert get(guarded + path + f"?token={TOKEN}")[0] == 401, path  # not in the query
    request_headers = [f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer"]
    for header in request_headers:
        reply = _raw(
            guarded,
            f"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: {header}\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
        assert reply.startswith(b"HTTP/1.1 401"), (header, reply[:80])


def test_path_tricks_reach_only_the_endpoints(guarded: str) -> None:
    for path in TRICKS:
        status, _ctype, body = get(guarded + path, token=TOKEN)
        if path.startswith("/metrics?"):
            assert status == 200  # the query is ignored: it is /metrics itself
            continue
        assert status == 404, (path, status)
        assert b"root:" not in body and b"rss" not in body, path


@pytest.mark.parametrize(
    "payload",
    [
        b"GARBAGE\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /metrics HTTP/9.9\r\n\r\n",
        b"\xff\xfe\x00\x01\r\n\r\n",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        b"GET /metrics HTTP/1.1\r\n" + b"X-Big: " + b"b" * 70_000 + b"\r\n\r\n",
    ],
    ids=[
        "garbage",
        "no-path",
        "bad-version",
        "binary",
        "long-url",
        "bad-header",
        "post",
        "huge-header",
    ],
)
def test_malformed_requests_get_a_4xx_and_the_server_keeps_serving(
    guarded: str, payload: bytes, capfd: pytest.CaptureFixture[str]
) -> None:
    reply = _raw(guarded, payload)
    if reply.startswith(b"HTTP/"):
        status = int(reply.split(b" ", 2)[1])
        # 4xx, or a refusal of what it does not serve (501 method, 505 version),
        # never 500 (a handler that failed)
        assert 400 <= status < 500 or status in (501, 505), reply[:120]
    elif reply:  # no request line to answer in kind: an HTTP/0.9 error page
        assert re.search(rb"Error code: (4\d\d|501|505)<", reply), reply[:200]
    assert get(guarded + "/healthz", token=TOKEN)[0] in (200, 503)
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
