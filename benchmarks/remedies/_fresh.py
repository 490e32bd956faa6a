"""Run one benchmark case in a fresh interpreter, so no case inherits another's heap."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def in_fresh_interpreter(script: str, *args: str) -> dict[str, Any]:
    """``python script ARGS`` in a new process; the JSON object on its last output line."""
    out = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
