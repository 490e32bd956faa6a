"""Put this directory on ``PYTHONPATH`` to start a memlens monitor in any program.

``memlens run --monitor`` does this for you; by hand::

    PYTHONPATH=$(python -c "import memlens.service.bootstrap as b; print(b.PATH)") \
        MEMLENS_MONITOR=1 python app.py

An existing ``sitecustomize`` further down ``sys.path`` still runs afterwards.
"""

import importlib.util
import os
import sys


def _chain() -> None:
    # Run the sitecustomize this module shadows, if there is one.
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if os.path.abspath(entry or ".") == here:
            continue
        candidate = os.path.join(entry or ".", "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location(
                "_memlens_chained_sitecustomize", candidate
            )
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            return


try:
    from memlens.service.autostart import autostart

    autostart()
finally:
    _chain()
