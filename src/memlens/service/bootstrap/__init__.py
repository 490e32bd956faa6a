"""A directory with a ``sitecustomize`` that auto-starts the monitor (see its docstring)."""

import os

PATH = os.path.dirname(os.path.abspath(__file__))
