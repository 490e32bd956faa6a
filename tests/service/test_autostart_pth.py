"""The installed ``memlens-autostart.pth`` starts the monitor for unmodified programs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.memlens_cli import memlens

PROBE = (
    "import importlib, json, sys, threading\n"
    "autostart = importlib.import_module('memlens.service.autostart')\n"
    "m = autostart.current()\n"
    "names = sorted(t.name for t in threading.enumerate() if t.name.startswith('memlens-'))\n"
    "print(json.dumps({'started': m is not None, 'threads': names, 'mode': m.config.mode if m else None}))\n"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMLENS_")}
    env.update({"MEMLENS_DB": str(tmp_path / "m.db"), "MEMLENS_PERSIST_HISTORY": "0"})
    env.update(extra)
    return env


def test_env_var_alone_starts_the_monitor(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(PROBE)
    run = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=_env(tmp_path, MEMLENS_MONITOR="1", MEMLENS_MODE="production"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["started"] and seen["mode"] == "production"
    assert "memlens-monitor" in seen["threads"]


def test_without_the_env_var_memlens_is_not_even_imported(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", "import sys; print('memlens' in sys.modules)"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout.strip() == "False"


def test_bad_config_prints_one_line_and_the_program_still_runs(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", "print('program ran')"],
        env=_env(tmp_path, MEMLENS_MONITOR="1", MEMLENS_MODE="warp"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0
    assert run.stdout.strip() == "program ran"
    assert run.stderr.count("\n") == 1 and "mode" in run.stderr


def test_memlens_run_monitor_flag(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(PROBE)
    for extra in (
        {},
        {"MEMLENS_RUN_REEXEC": "0"},
    ):
        run = memlens(
            "run",
            "--monitor",
            "--no-html",
            "-q",
            "app.py",
            db=tmp_path / "m.db",
            MEMLENS_PERSIST_HISTORY="0",
            **extra,
        )
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["started"], extra
