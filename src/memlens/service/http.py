"""In-process HTTP endpoints: ``/metrics``, ``/healthz``, ``/debug/memory``.

Opt-in (``http_enabled`` or ``Monitor.serve_http()``), on the stdlib
``ThreadingHTTPServer`` in a ``memlens-http`` daemon thread. It binds to loopback
unless told otherwise; with a token, every request needs
``Authorization: Bearer <token>``. Responses are computed per request from the
monitor (nothing runs between requests).

- ``/metrics``: Prometheus text exposition (no extra needed);
- ``/healthz``: health JSON, HTTP 200 for ok/warning, 503 for critical;
- ``/debug/memory``: JSON with readings, trends, leaks, top sites, components, GC.
- ``/debug/objects``: a heap census (``heap/census.py``): types, largest objects by
  retained size with paths (seconds of work: for ``memlens objects URL``).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from memlens.core.errors import ConfigError
from memlens.service import metrics

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor

logger = logging.getLogger("memlens.monitor")


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "memlens"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        if srv.token is not None and not self._authorized(srv.token):
            body = b'{"error": "unauthorized"}'
            self._send(
                401, "application/json", body, {"WWW-Authenticate": 'Bearer realm="memlens"'}
            )
            return
        path = urlsplit(self.path).path.rstrip("/") or "/"
        try:
            if path == "/metrics":
                text = metrics.render(metrics.collect(srv.monitor))
                self._send(200, metrics.CONTENT_TYPE, text.encode())
            elif path == "/healthz":
                health = srv.monitor.health()
                self._json(503 if health.status == "critical" else 200, health.to_dict())
            elif path == "/debug/memory":
                self._json(200, srv.monitor.debug_snapshot())
            elif path == "/debug/objects":
                from memlens.heap.objects import census_self

                self._json(200, census_self())
            elif path == "/":
                self._json(
                    200,
                    {"endpoints": ["/metrics", "/healthz", "/debug/memory", "/debug/objects"]},
                )
            else:
                self._json(404, {"error": f"no endpoint {path}"})
        except Exception as exc:  # noqa: BLE001 - a failing endpoint must not kill the server
            logger.exception("memlens endpoint %s failed", path)
            self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _authorized(self, token: str) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )

    def _json(self, status: int, data: Any) -> None:
        self._send(status, "application/json", json.dumps(data, default=str).encode())

    def _send(
        self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("memlens http: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], monitor: Monitor, token: str | None) -> None:
        self.monitor = monitor
        self.token = token
        if ":" in addr[0]:
            import socket

            self.address_family = socket.AF_INET6
        super().__init__(addr, _Handler)


class MonitorServer:
    """The endpoints of one monitor; ``url`` is where they listen once started."""

    def __init__(
        self, monitor: Monitor, host: str = "127.0.0.1", port: int = 0, token: str | None = None
    ) -> None:
        if token is not None and not token.strip():
            raise ConfigError(
                "invalid config http_token='': accepted values are a non-empty token or none"
            )
        self.monitor = monitor
        self.host = host
        self.port = port
        self.token = token
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._server is not None:
            return
        if not _is_loopback(self.host) and self.token is None:
            logger.warning(
                "memlens endpoints listen on %s without a token: anyone who can reach it "
                "can read memory details of this service; set http_token",
                self.host,
            )
        try:
            self._server = _Server((self.host, self.port), self.monitor, self.token)
        except OSError as exc:
            raise ConfigError(
                f"invalid config http_port={self.port}: cannot listen on {self.host}:{self.port} ({exc.strerror})"
            ) from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},
            name="memlens-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def close_inherited(self) -> None:
        """In a forked child: close the parent's listening socket without shutdown()."""
        server, self._server = self._server, None
        self._thread = None
        if server is not None:
            server.socket.close()
