"""The client side of a memlens monitor's HTTP endpoints (``/debug/memory``, ...).

One place says what a monitor URL may look like and how a failed GET reads, so every
command that talks to a monitor (``memlens top``, ``memlens objects URL``) refuses
bad input with the same single line.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from memlens.core.errors import MemlensError

ENDPOINTS = ("/debug/memory", "/debug/objects")

_NETLOC = re.compile(r"^(?:[^@/\s]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::\d{1,5})?$")


class EndpointError(MemlensError):
    """The monitor endpoint cannot be reached or does not answer as expected."""


def endpoint_url(url: str, endpoint: str = "/debug/memory") -> str:
    """``endpoint`` of the monitor at ``url`` (``host:port``, ``http://host:port``, or
    the URL of any of its endpoints, which is replaced)."""
    given = url
    if "://" not in url:
        url = "http://" + url
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or not _NETLOC.match(parts.netloc)
    ):
        raise EndpointError(
            f"invalid URL {given!r}: expected a process id or e.g. http://127.0.0.1:9000"
        )
    path = parts.path.rstrip("/")
    for known in ENDPOINTS:
        if path.endswith(known):
            path = path[: -len(known)]
    return f"{parts.scheme}://{parts.netloc}{path}{endpoint}"


def get_json(
    url: str, token: str | None = None, timeout: float = 5.0, expect: str = ""
) -> dict[str, Any]:
    """GET ``url``'s JSON object or raise :class:`EndpointError` with one clear line.

    ``expect`` is a key the answer must have (it tells a memlens endpoint from
    another service's JSON).
    """
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        hint = " (wrong or missing --token)" if exc.code == 401 else ""
        raise EndpointError(f"{url} answered HTTP {exc.code}{hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EndpointError(f"cannot reach {url}: {reason}") from None
    try:
        data = json.loads(body)
    except ValueError:
        raise EndpointError(f"{url} did not return JSON: is it a memlens endpoint?") from None
    if not isinstance(data, dict) or (expect and expect not in data):
        path = urlsplit(url).path
        raise EndpointError(f"{url} is not a memlens {path or 'monitor'} endpoint")
    return data
