"""Which frames are the user's own code, and which component a file belongs to.

Tools that report the innermost frame of an allocation name ``json/encoder.py`` or
``logging/__init__.py``; the user wants the line of *their* code that called it.
A frame is "user code" unless its file is in the standard library, in
site-packages/dist-packages, frozen/builtin, or memlens itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

MEMLENS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


@lru_cache(maxsize=1)
def _library_prefixes() -> tuple[str, ...]:
    # On first use, not at import: sysconfig is 0.1 MiB the always-on monitor never needs.
    import sysconfig

    paths = sysconfig.get_paths()
    prefixes = {
        paths.get("stdlib", ""),
        paths.get("platstdlib", ""),
        paths.get("purelib", ""),
        paths.get("platlib", ""),
        os.path.dirname(os.__file__),
    }
    return tuple(sorted(p.rstrip(os.sep) + os.sep for p in prefixes if p))


HOST_FILES: set[str] = set()
"""Files that run the user's program for memlens (the re-exec bootstrap ``<string>``,
the ``memlens`` console script): never the user's code, never shown in stacks."""


def mark_host_file(filename: str) -> None:
    """Treat ``filename`` as memlens's own launcher from now on."""
    HOST_FILES.add(filename)
    is_user_file.cache_clear()


def mark_launcher(argv0: str) -> None:
    """Treat the ``memlens`` console script that started this process (``argv0``,
    as given and absolute) as a host file; anything else is left alone."""
    if os.path.basename(argv0).startswith("memlens"):
        mark_host_file(os.path.abspath(argv0))
        mark_host_file(argv0)


@lru_cache(maxsize=8192)
def is_user_file(filename: str) -> bool:
    """True when ``filename`` is the user's own code rather than a library's."""
    if not filename or filename.startswith("<frozen") or filename == "<unknown>":
        return False
    if filename in HOST_FILES:
        return False
    if filename.startswith("<"):
        return True  # <stdin>, <string>: code the user typed or exec'd
    if filename.startswith(MEMLENS_DIR):
        return False
    if "site-packages" in filename or "dist-packages" in filename:
        return False
    return not filename.startswith(_library_prefixes())


def innermost_user_index(filenames: Sequence[str]) -> int:
    """Index of the innermost user frame in oldest-first ``filenames``, or the last one."""
    for i in range(len(filenames) - 1, -1, -1):
        if is_user_file(filenames[i]):
            return i
    return len(filenames) - 1


def user_frame_index(frames: Sequence[tuple[str, int]]) -> int:
    """Index of the innermost user frame in most-recent-first ``frames``, or 0.

    This is tracemalloc's own order, so grouped snapshots are attributed without
    reversing or copying each traceback.
    """
    for i, (filename, _) in enumerate(frames):
        if is_user_file(filename):
            return i
    return 0


class ComponentMap:
    """Maps source files to user-named components.

    Components are named by module prefix (``"engine": "myapp.engine"``) or by path
    prefix (``"vendor": "/srv/app/vendor/"``). Module names are resolved through
    ``sys.modules`` lazily and cached, since modules load over time.
    """

    def __init__(self, components: Mapping[str, str | Iterable[str]] | None = None) -> None:
        self._rules: list[tuple[str, str, bool]] = []  # (name, prefix, is_path)
        for name, prefixes in (components or {}).items():
            items = [prefixes] if isinstance(prefixes, str) else list(prefixes)
            for prefix in items:
                is_path = os.sep in prefix or prefix.endswith(".py")
                if is_path:
                    prefix = os.path.abspath(prefix)
                self._rules.append((name, prefix, is_path))
        # Longest prefix wins: "myapp.engine.cache" beats "myapp.engine".
        self._rules.sort(key=lambda r: len(r[1]), reverse=True)
        self._cache: dict[str, str | None] = {}
        self._file_to_module: dict[str, str] = {}
        self._modules_seen = 0

    def __bool__(self) -> bool:
        return bool(self._rules)

    @property
    def names(self) -> list[str]:
        return sorted({r[0] for r in self._rules})

    def component_of(self, filename: str) -> str | None:
        """The component a file belongs to, or ``None``."""
        if filename in self._cache:
            return self._cache[filename]
        module = self._module_of(filename)
        found = None
        for name, prefix, is_path in self._rules:
            if is_path:
                if filename.startswith(prefix):
                    found = name
                    break
            elif module is not None and (module == prefix or module.startswith(prefix + ".")):
                found = name
                break
        if module is not None or found is not None:
            self._cache[filename] = found
        return found

    def component_of_stack(self, filenames: Sequence[str]) -> str | None:
        """Component of the innermost frame (oldest-first input) that has one."""
        for filename in reversed(filenames):
            found = self.component_of(filename)
            if found is not None:
                return found
        return None

    def _module_of(self, filename: str) -> str | None:
        if len(sys.modules) != self._modules_seen:
            self._modules_seen = len(sys.modules)
            # A copy, which runs no Python code: list(items()) allocates a tuple per
            # entry, and a collection that runs a finalizer can switch to a thread
            # that imports (this runs on the monitor's snapshot thread).
            for mod_name, mod in sys.modules.copy().items():
                path = getattr(mod, "__file__", None)
                if path:
                    self._file_to_module.setdefault(os.path.abspath(path), mod_name)
        return self._file_to_module.get(os.path.abspath(filename))
