"""``objects()``: a heap census of this process, another process (by pid) or a service.

The census itself lives in :mod:`memlens.heap.census` (standard library only, so its
source can run inside another process); this module picks where it runs:

- in this process: :func:`census_self`;
- in another local process: :func:`census_pid` attaches (see :mod:`memlens.heap.attach`)
  and adds what the target paid under ``"attach"``;
- in a service with a memlens monitor: :func:`census_url` asks its
  ``/debug/objects`` endpoint.
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any

from memlens.core.endpoint import endpoint_url, get_json
from memlens.heap import census as _census
from memlens.heap.native_ext import load_extension


def census_self(top_types: int = 25, top_objects: int = 15, paths: bool = True) -> dict[str, Any]:
    """The census of the calling process (see :func:`memlens.heap.census.census`).

    It uses the C engine (``memlens._census``) when it was built and is not disabled.
    """
    data = _census.census(
        top_types=top_types, top_objects=top_objects, paths=paths, accel=load_extension("_census")
    )
    data["pid"] = os.getpid()
    data["source"] = "self"
    return data


def census_pid(
    pid: int,
    top_types: int = 25,
    top_objects: int = 15,
    paths: bool = True,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """The census of process ``pid``, run inside it; ``data["attach"]`` says the pause."""
    from memlens.heap import attach

    kwargs: dict[str, Any] = {"top_types": top_types, "top_objects": top_objects, "paths": paths}
    kwargs["accel"] = accelerator_for(attach.target_python(pid))
    result = attach.run_python(pid, inspect.getsource(_census), "census", kwargs, timeout=timeout)
    data = dict(result.value)
    data["pid"] = pid
    data["source"] = "pid"
    data["attach"] = {
        "method": result.method,
        "stopped_seconds": result.stopped,
        "held_gil_seconds": result.held_gil,
        "pause_seconds": result.pause,
        "attempts": result.attempts,
        "summary": result.pause_line(),
    }
    return data


def accelerator_for(version: tuple[int, int] | None) -> str | None:
    """The C engine's shared library for a target running Python ``version``, if any.

    Only the very Python memlens runs on can load it (the extension is built for one
    ABI); any other target runs the pure-Python census.
    """
    module = load_extension("_census")
    path = getattr(module, "__file__", None)
    if not path or version != tuple(sys.version_info[:2]) or hasattr(sys, "gettotalrefcount"):
        return None
    return str(path)


def census_url(url: str, token: str | None = None, timeout: float = 120.0) -> dict[str, Any]:
    """The census served by a monitor's ``/debug/objects`` endpoint."""
    data = get_json(endpoint_url(url, "/debug/objects"), token, timeout, expect="types")
    data["source"] = "url"
    return data


def objects(
    target: int | str | None = None, top_types: int = 25, top_objects: int = 15
) -> dict[str, Any]:
    """Census of this process (``None``), a pid (``int`` or digits) or a monitor URL."""
    if target is None:
        return census_self(top_types, top_objects)
    if isinstance(target, int) or str(target).isdigit():
        return census_pid(int(target), top_types, top_objects)
    return census_url(str(target))
