"""The one error family memlens raises for things a user can fix.

The CLI turns any ``MemlensError`` into a single line on stderr and a non-zero exit;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any


class MemlensError(Exception):
    """Base class: a user-facing problem with a one-line explanation."""

    exit_code: int = 2


class ConfigError(MemlensError):
    """Invalid configuration: names the field and the accepted values."""


class StoreError(MemlensError):
    """The session store cannot be opened, read or written."""


class NotFoundError(MemlensError):
    """A session, diagnosis or other stored record does not exist."""


class TargetError(MemlensError):
    """A program, scenario or function to profile cannot be found or loaded."""


class InputFormatError(MemlensError):
    """An input file (transcript, request, export) is not in a format memlens reads."""


class MissingExtraError(MemlensError):
    """An optional dependency is not installed; names the extra that provides it."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(f"{module} is not installed: pip install 'memlens[{extra}]'")
        self.module = module
        self.extra = extra


def require(module: str, extra: str) -> Any:
    """Import an optional dependency or raise :class:`MissingExtraError`."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc


class PoolError(MemlensError):
    """An object pool is misused: exhausted, closed, or handed an object it does not own."""


class ResourceError(MemlensError):
    """A managed resource is unknown, already registered, busy, or failed to clean up."""


class GCError(MemlensError):
    """A garbage-collector setting or measurement cannot be applied as asked."""


class CacheError(MemlensError, TypeError):
    """A value cannot be cached as asked (for example, it cannot be weakly referenced)."""
