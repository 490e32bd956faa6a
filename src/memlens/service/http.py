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

The server protects the service it lives in: a connection that sends nothing for
:data:`READ_TIMEOUT` seconds (half-open, idle keep-alive, a slow client) is closed; at
most :data:`MAX_HANDLERS` requests are handled at once and a connection beyond that
gets ``503`` and is closed without a thread; ``/debug/memory`` (the expensive one) is
rate-limited and answers ``429`` with ``Retry-After`` past its budget; a client that
goes away mid-response is not an error (no traceback, nothing on stderr).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from memlens.core.errors import ConfigError
from memlens.service import metrics

if TYPE_CHECKING:
    from memlens.service.monitor import Monitor

logger = logging.getLogger("memlens.monitor")

#: Seconds a connection may stay silent (reading a request or idle between requests).
READ_TIMEOUT = 10.0
#: Requests handled at once; further connections get 503 without a thread.
MAX_HANDLERS = 16
#: ``/debug/memory``: sustained requests per second, and the burst allowed.
DEBUG_RATE = 2.0
DEBUG_BURST = 5

_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: 20\r\n\r\n"
    b'{"error": "busy"}   '
)


class _RateLimit:
    """A token bucket: ``rate`` requests a second on average, ``burst`` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """0 if a request may go ahead now, else the seconds until one may."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.rate


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

    def setup(self) -> None:
        super().setup()
        # a silent client (half-open, idle keep-alive, slow) is closed after this
        self.connection.settimeout(self.server.read_timeout)

    def handle(self) -> None:
        try:
            super().handle()
        except _GONE:
            self.close_connection = True  # the client went away or fell silent

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
            elif path in ("/debug/memory", "/debug/objects"):
                wait = srv.debug_limit.take()
                if wait:
                    self._json(
                        429,
                        {"error": f"too many requests to {path}"},
                        {"Retry-After": str(max(1, round(wait)))},
                    )
                    return
                if path == "/debug/memory":
                    self._json(200, srv.monitor.debug_snapshot())
                else:
                    from memlens.heap.objects import census_self

                    self._json(200, census_self())
            elif path == "/":
                self._json(
                    200,
                    {"endpoints": ["/metrics", "/healthz", "/debug/memory", "/debug/objects"]},
                )
            else:
                self._json(404, {"error": f"no endpoint {path}"})
        except _GONE:
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - a failing endpoint must not kill the server
            logger.exception("memlens endpoint %s failed", path)
            self._json(500, {"error": f"{type(exc).__name__}: {exc}"})

    def _authorized(self, token: str) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        )

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, "application/json", json.dumps(data, default=str).encode(), headers)

    def _send(
        self, status: int, ctype: str, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        try:
            self.end_headers()
            self.wfile.write(body)
        except _GONE:
            self.close_connection = True  # an aborted scrape is not an error

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("memlens http: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # room for a burst of scrapes: with socketserver's 5, connections beyond it wait for
    # SYN retransmits (1 s, 3 s, 7 s...) before they are even accepted
    request_queue_size = 128

    def __init__(
        self,
        addr: tuple[str, int],
        monitor: Monitor,
        token: str | None,
        *,
        read_timeout: float = READ_TIMEOUT,
        max_handlers: int = MAX_HANDLERS,
        debug_rate: float = DEBUG_RATE,
        debug_burst: int = DEBUG_BURST,
    ) -> None:
        self.monitor = monitor
        self.token = token
        self.read_timeout = read_timeout
        self.slots = threading.BoundedSemaphore(max_handlers)
        self.debug_limit = _RateLimit(debug_rate, debug_burst)
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to a thread if a slot is free; else 503 and close."""
        if not self.slots.acquire(blocking=False):
            try:
                request.settimeout(0.5)
                request.sendall(_BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up is routine; anything else goes to the log, not stderr."""
        exc = sys.exc_info()[1]
        if isinstance(exc, _GONE):
            logger.debug("memlens http: client %s went away (%s)", client_address, exc)
            return
        logger.error("memlens http: error serving %s", client_address, exc_info=True)


class MonitorServer:
    """The endpoints of one monitor; ``url`` is where they listen once started."""

    def __init__(
        self,
        monitor: Monitor,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        *,
        read_timeout: float = READ_TIMEOUT,
        max_handlers: int = MAX_HANDLERS,
        debug_rate: float = DEBUG_RATE,
        debug_burst: int = DEBUG_BURST,
    ) -> None:
        self.limits = {
            "read_timeout": read_timeout,
            "max_handlers": max_handlers,
            "debug_rate": debug_rate,
            "debug_burst": debug_burst,
        }
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
            self._server = _Server(
                (self.host, self.port),
                self.monitor,
                self.token,
                read_timeout=float(self.limits["read_timeout"]),
                max_handlers=int(self.limits["max_handlers"]),
                debug_rate=float(self.limits["debug_rate"]),
                debug_burst=int(self.limits["debug_burst"]),
            )
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
