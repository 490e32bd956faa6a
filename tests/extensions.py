"""The optional C extensions in tests: skip where they cannot exist, fail where they should.

A missing build is only acceptable where it could not have happened (no compiler or
no Python headers) or was asked for (``MEMLENS_NO_EXTENSIONS=1``); anywhere else the
tests of an extension fail, so a silently failed build is never a silent skip.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path
from types import ModuleType

import pytest

from memlens.heap.native_ext import extensions_disabled, load_extension


def buildable() -> bool:
    """A C compiler and Python's headers are here, so the extensions should be built."""
    include = Path(sysconfig.get_paths()["include"], "Python.h")
    return shutil.which("cc") is not None and include.exists()


def require_extension(name: str) -> tuple[ModuleType | None, pytest.MarkDecorator]:
    """``memlens.<name>`` (or ``None``) and a ``pytestmark`` that skips without it.

    Fails the importing test module when the extension should have been built.
    """
    module = load_extension(name)
    if module is None and not extensions_disabled() and buildable():
        pytest.fail(f"memlens.{name} is not built (python3 setup.py build_ext --inplace)")
    return module, pytest.mark.skipif(module is None, reason="C extension not built or disabled")
