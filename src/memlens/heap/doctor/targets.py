"""Loading what to diagnose: a scenario file or ``package.module:function``.

A scenario file defines ``step(i)`` (one unit of repeated work) and optionally
``setup()`` and ``teardown()``. A ``module:function`` target is called as the step,
with the iteration number if it accepts an argument. Anything that cannot be loaded
raises :class:`~memlens.core.errors.TargetError` with one line saying why.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from memlens.core.errors import TargetError

Step = Callable[[int], object]


@dataclass
class Target:
    """A loaded target: the step and its optional setup/teardown."""

    name: str
    step: Step
    setup: Callable[[], object] | None = None
    teardown: Callable[[], object] | None = None
    user_roots: list[str] = field(default_factory=list)


class EventLoop:
    """The event loop the doctor owns for ``async def`` steps, setups and teardowns.

    One loop for the whole diagnosis, so state bound to it (clients, queues, tasks
    the step leaves behind) lives as long as it would in a service. Created on first
    use; :meth:`close` cancels what is left and closes it.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, value: object) -> object:
        """Run ``value`` to completion if it is awaitable; return it unchanged otherwise."""
        if not inspect.isawaitable(value):
            return value
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(_as_coroutine(value))

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


async def _as_coroutine(value: Any) -> object:
    return await value


def as_call(fn: Callable[[], object] | None, loop: EventLoop) -> Callable[[], object] | None:
    """``fn`` (a setup or teardown), running its coroutine on ``loop`` if it is async."""
    if fn is None:
        return None
    return lambda: loop.run(fn())


def as_step(fn: Callable[..., object], what: str = "step", loop: EventLoop | None = None) -> Step:
    """Adapt ``fn`` to ``step(i)``: pass the iteration only if it takes an argument.

    An ``async def`` step (or one returning an awaitable) runs on ``loop``, the event
    loop the doctor owns; without a loop, a coroutine function is refused.
    """
    if not callable(fn):
        raise TargetError(f"{what} is not callable: {fn!r}")
    if loop is not None:
        inner = _adapt(fn, what)
        return lambda i: loop.run(inner(i))
    if inspect.iscoroutinefunction(fn):
        raise TargetError(f"{what} {_name(fn)} is a coroutine function and no event loop was given")
    return _adapt(fn, what)


def _adapt(fn: Callable[..., object], what: str) -> Step:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn  # builtins: assume step(i)
    params = [
        p
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    required = [p for p in params if p.default is p.empty and p.kind != p.VAR_POSITIONAL]
    if len(required) > 1:
        raise TargetError(f"{what} {_name(fn)} must take at most one argument (the iteration)")
    if params:
        return fn
    return lambda i: fn()


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_file(path: str) -> tuple[ModuleType, str]:
    """Import a scenario file as a module named after it (its folder goes on sys.path)."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise TargetError(f"scenario file not found: {path}")
    folder = os.path.dirname(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    name = (
        stem
        if stem.isidentifier() and stem not in sys.modules
        else f"memlens_target_{abs(hash(path))}"
    )
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"cannot load {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        del sys.modules[name]
        raise TargetError(f"cannot import {path}: it called sys.exit({exc.code})") from None
    except BaseException as exc:  # noqa: BLE001 - any import failure is the user's
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise TargetError(f"cannot import {path}: {_describe(exc)}") from None
    return module, folder


def resolve(spec: str, what: str = "target") -> tuple[Callable[..., object], str]:
    """Resolve ``package.module:function`` (dotted attributes allowed after the colon)."""
    if ":" not in spec:
        raise TargetError(f"{what} {spec!r} must look like package.module:function")
    mod_name, _, attr = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(mod_name)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise TargetError(f"cannot import module {mod_name!r}: {_describe(exc)}") from None
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"module {mod_name!r} has no attribute {attr!r}") from None
    root = _package_root(module)
    return obj, root


def _package_root(module: ModuleType) -> str:
    filename = getattr(module, "__file__", None) or ""
    folder = os.path.dirname(os.path.abspath(filename)) if filename else os.getcwd()
    for _ in range(module.__name__.count(".")):
        folder = os.path.dirname(folder)
    return folder


def load(spec: str, setup: str | None = None) -> Target:
    """Load a target from the command line's TARGET and ``--setup``."""
    if spec.endswith(".py") or os.path.isfile(spec):
        module, folder = load_file(spec)
        step = getattr(module, "step", None)
        if step is None:
            raise TargetError(f"{spec} defines no step(i) function")
        target = Target(
            name=os.path.relpath(os.path.abspath(spec)) if not os.path.isabs(spec) else spec,
            step=as_step(step),
            setup=getattr(module, "setup", None),
            teardown=getattr(module, "teardown", None),
            user_roots=[folder],
        )
    else:
        fn, root = resolve(spec)
        target = Target(name=spec, step=as_step(fn), user_roots=[root])
    if setup:
        fn, root = resolve(setup, "setup")
        if not callable(fn):
            raise TargetError(f"setup {setup!r} is not callable")
        target.setup = fn
        target.user_roots.append(root)
    for what in ("setup", "teardown"):
        value = getattr(target, what)
        if value is not None and not callable(value):
            raise TargetError(f"{what} in {spec} is not callable")
    return target
