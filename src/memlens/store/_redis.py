"""Connecting to Redis for the stores: URL parsing, the client, and error wording.

``redis://[user:password@]host[:port][/db][?prefix=NAME]`` (``rediss://`` for TLS,
``unix:///path.sock?db=0``). ``prefix`` (default ``memlens``) namespaces every key so
several fleets or test runs can share one server. The ``redis`` package comes with
the ``redis`` extra and is imported only here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from memlens.core.errors import StoreError, require
from memlens.store.records import StoreUnavailableError

T = TypeVar("T")

DEFAULT_PREFIX = "memlens"


def split_url(url: str) -> tuple[str, str, str]:
    """``(url for redis-py, key prefix, location without password)``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = DEFAULT_PREFIX
    kept = []
    for name, value in query:
        if name == "prefix":
            prefix = value
        else:
            kept.append((name, value))
    if not prefix or any(c in prefix for c in " \x00"):
        raise StoreError(f"invalid prefix {prefix!r} in {safe_location(url)}")
    clean = urlunsplit(parts._replace(query=urlencode(kept)))
    return clean, prefix, safe_location(url)


def safe_location(url: str) -> str:
    """The URL with any password replaced by ``***`` (for messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def connect(url: str, *, timeout: float = 5.0) -> tuple[Any, str, str]:
    """A checked Redis client, its key prefix and a printable location."""
    redis = require("redis", "redis")
    clean, prefix, location = split_url(url)
    try:
        client = redis.Redis.from_url(
            clean,
            socket_timeout=timeout,
            socket_connect_timeout=min(timeout, 2.0),
            health_check_interval=30,
        )
    except ValueError as exc:
        raise StoreError(f"invalid Redis URL {location}: {exc}") from exc
    with errors(location):
        client.ping()
    return client, prefix, location


@contextmanager
def errors(location: str) -> Iterator[None]:
    """Turn redis-py exceptions into one-line store errors."""
    redis = require("redis", "redis")
    try:
        yield
    except redis.exceptions.AuthenticationError as exc:
        raise StoreError(f"Redis at {location} refused the credentials: {exc}") from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        raise StoreUnavailableError(
            f"cannot reach Redis at {location}: {_first_line(exc)}"
        ) from exc
    except redis.exceptions.ResponseError as exc:
        raise StoreError(f"Redis at {location} answered an error: {_first_line(exc)}") from exc


def call(location: str, fn: Callable[[], T]) -> T:
    """``fn()`` with :func:`errors` applied."""
    with errors(location):
        return fn()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def text(value: Any) -> str:
    """Redis returns bytes; stored text is UTF-8 (undecodable bytes show as damage later)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def require_client() -> Any:
    """The ``redis`` package (``MissingExtraError`` naming the extra if absent)."""
    return require("redis", "redis")


R = TypeVar("R", bound="RedisStoreBase")


class RedisStoreBase:
    """What both Redis stores hold: the client, the key prefix, the URL shown in
    messages, and the read-only flag; calls go through :func:`call`'s error wording."""

    def __init__(self, url: str, *, readonly: bool = False, timeout: float = 5.0) -> None:
        self._client, self.prefix, self._location = connect(url, timeout=timeout)
        self.readonly = readonly

    @property
    def location(self) -> str:
        return self._location

    def close(self) -> None:
        self._client.close()

    def __enter__(self: R) -> R:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Any) -> Any:
        return call(self._location, fn)

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(f"{self._location} was opened read-only")
