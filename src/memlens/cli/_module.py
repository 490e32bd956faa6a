"""Which file ``python -m NAME`` would run, found without running any of the program.

``importlib.util.find_spec("pkg.tool")`` imports ``pkg`` first, running its
``__init__``; the launching ``memlens run`` must not do that, because the program then
runs again (and its package's side effects twice) in the interpreter that hosts it.
So the module is looked up the way the import system looks it up (every finder on
``sys.meta_path``, with the parent package's search locations), reading only specs:
what the packages' ``__init__`` code might change at import time (a ``__path__``
extended by hand) is not seen, and the hosted interpreter checks the answer against
the real import before the program's first line; where they differ it runs the
module the import found instead (see ``cli/_reexec.py``).

Mirrors ``runpy._get_module_details``: a package runs its ``__main__`` submodule,
a package named ``__main__`` cannot, a namespace package without ``__main__`` cannot.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from dataclasses import dataclass
from importlib.machinery import ModuleSpec

from memlens.core.errors import TargetError


@dataclass(frozen=True)
class ModuleMain:
    """The module ``python -m`` runs for a name, and its source file."""

    name: str  # "pkg.__main__" for ``-m pkg``
    origin: str  # the source file's absolute path

    @property
    def parent(self) -> str:
        """The package ``python -m`` imports before running it ("" for a top-level module)."""
        return self.name.rpartition(".")[0]


def locate(name: str) -> ModuleMain | None:
    """The source file ``python -m name`` runs, or ``None`` where this cannot tell.

    ``None`` means: not found without importing, or not a plain ``.py`` file (an
    extension module, a sourceless ``.pyc``, a zip); the caller then finds the module
    the importing way. Raises :class:`TargetError` for what ``python -m`` refuses.
    """
    if not name or name.startswith(".") or any(not part for part in name.split(".")):
        raise TargetError(f"cannot run module {name!r}: relative module names not supported")
    spec = _find(name)
    if spec is None:
        return None
    if spec.submodule_search_locations is not None:  # a package: its __main__ runs
        if name == "__main__" or name.endswith(".__main__"):
            raise TargetError(f"cannot run module {name!r}: a package cannot be __main__")
        main = _find(name + ".__main__", spec)
        if main is None:
            if spec.loader is None or spec.origin in (None, "namespace"):
                raise TargetError(f"cannot run module {name!r}: a namespace package")
            raise TargetError(f"cannot run module {name!r}: a package without a __main__ module")
        name, spec = name + ".__main__", main
    if not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
        return None
    origin = spec.origin or ""
    if not origin.endswith(".py") or not os.path.isfile(origin):
        return None
    return ModuleMain(name, os.path.abspath(origin))


def _find(name: str, parent: ModuleSpec | None = None) -> ModuleSpec | None:
    """The spec of ``name`` from the finders, its parents' specs read, not imported."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return getattr(loaded, "__spec__", None)
    head, _, _ = name.rpartition(".")
    path: list[str] | None = None
    if head:
        if parent is None:
            parent = _find(head)
        if parent is None:
            return None
        module = sys.modules.get(head)
        locations = getattr(module, "__path__", None) if module is not None else None
        if locations is None:
            locations = parent.submodule_search_locations
        if locations is None:
            raise TargetError(f"cannot run module {name!r}: {head!r} is not a package")
        path = list(locations)
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is None:
            continue
        try:
            spec = find_spec(name, path)
        except (ImportError, ValueError, TypeError, AttributeError):
            return None
        if spec is not None:
            return spec
    return None
