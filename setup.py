"""Build hooks that pyproject.toml cannot express: install ``memlens-autostart.pth``
and build the optional C accelerators.

The C extensions (``memlens._heapgraph``, ``memlens._sampler``, ``memlens._census``,
``memlens._bpecount``, ``memlens._textscan``, ``memlens._tracegroup``) are optional: when there is no compiler or no Python headers the build prints one
warning and memlens uses its pure-Python paths (see ``memlens.heap.native_ext``). ``pip install`` never
fails because of them.

Why this file exists beside pyproject.toml: all metadata lives in pyproject.toml, but
setuptools has no declarative way to place a file at the root of site-packages (the
.pth hook below) or to build C extensions that may fail without failing the install
(``memlens._heapgraph``, the sampling tracer ``memlens._sampler``, the heap census's
graph walk ``memlens._census``, the exact token counter ``memlens._bpecount``, the keep-set's text scans
``memlens._textscan``, a snapshot's traces summed per traceback ``memlens._tracegroup``, and
``memlens._gdbshim``, a library for gdb, not Python: see ``heap/attach/gdb_env.py``). Nothing else belongs in this file.

The .pth file lets ``MEMLENS_MONITOR=1 python app.py`` monitor an unmodified
program. It costs one environment lookup at interpreter start-up and imports
memlens only when that variable is set. It is placed at the root of both the
regular wheel (via build_py) and the editable wheel (pip install -e).
"""

import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PTH = "memlens-autostart.pth"
PTH_SOURCE = os.path.join(HERE, "src", PTH)


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        self.copy_file(PTH_SOURCE, os.path.join(self.build_lib, PTH), preserve_mode=0)

    def get_outputs(self, include_bytecode=1):
        return [*super().get_outputs(include_bytecode), os.path.join(self.build_lib, PTH)]


class optional_build_ext(build_ext):
    """Build each extension if possible; skip (with a warning) when it cannot."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - no compiler: pure-Python fallback
            self.warn(f"memlens: C extensions not built ({exc}); using pure-Python paths")

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self.warn(f"memlens: {ext.name} not built ({exc}); using its pure-Python path")


EXTENSIONS = [
    Extension("memlens._heapgraph", ["src/memlens/_heapgraph.c"], optional=True),
    Extension("memlens._sampler", ["src/memlens/_sampler.c"], libraries=["m"], optional=True),
    Extension("memlens._census", ["src/memlens/_census.c"], optional=True),
    Extension(
        "memlens._bpecount",
        ["src/memlens/_bpecount.c"],
        depends=["src/memlens/_bpeclasses.h"],
        optional=True,
    ),
    Extension("memlens._textscan", ["src/memlens/_textscan.c"], optional=True),
    Extension("memlens._tracegroup", ["src/memlens/_tracegroup.c"], optional=True),
    # Not a Python module: a library gdb loads to run code in a process on kernels whose
    # extended register state gdb 13 cannot write (see the file's comment).
    Extension("memlens._gdbshim", ["src/memlens/_gdbshim.c"], libraries=["dl"], optional=True),
]

cmdclass = {"build_py": build_py_with_pth, "build_ext": optional_build_ext}

try:
    from setuptools.command.editable_wheel import editable_wheel

    class editable_wheel_with_pth(editable_wheel):
        def _run_build_commands(self, dist_name, unpacked_wheel, build_lib, tmp_dir):
            result = super()._run_build_commands(dist_name, unpacked_wheel, build_lib, tmp_dir)
            shutil.copyfile(PTH_SOURCE, os.path.join(unpacked_wheel, PTH))
            return result

    cmdclass["editable_wheel"] = editable_wheel_with_pth
except ImportError:  # setuptools without PEP 660 support: editable installs lack the hook
    pass

setup(
    cmdclass=cmdclass,
    ext_modules=[e for e in EXTENSIONS if os.path.exists(os.path.join(HERE, e.sources[0]))],
)
