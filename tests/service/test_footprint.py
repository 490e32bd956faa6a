"""What starting the always-on monitor, and ``memlens --help``, load (issue #15).

The footprint budget (<= 2 MiB RSS, <= 30 ms) is measured by
``benchmarks/bench_footprint.py``; these tests pin down the part that decides it and
does not depend on timing: which modules each one imports beyond a bare interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Modules the production monitor must not load until something asks for them.
HEAVY = {
    "platform",
    "subprocess",
    "socket",
    "uuid",
    "datetime",
    "json",
    "logging",
    "difflib",
    "tracemalloc",
    "pickle",
    "sqlite3",
    "rich",
    "click",
    "jinja2",
    # dataclasses and what it imports: ~1 MiB (the monitor's value classes are
    # memlens.core.record classes instead)
    "dataclasses",
    "inspect",
    "ast",
    "dis",
    "tokenize",
    "linecache",
    "copy",
    # read only when allocation sites are resolved
    "sysconfig",
}

# The monitor's own modules in production mode; the findings model (dataclasses),
# the store and the faces load only when something asks for them.
NOT_ON_THE_PATH = ("memlens.report", "memlens.cli", "memlens.store", "memlens.core.findings")

REPORT = "import json, sys; print(json.dumps(sorted(sys.modules)))"


def _modules(code: str, tmp_path: object) -> set[str]:
    # A service's environment: none of the test run's own MEMLENS_* switches (an
    # unknown one is reported through logging, which would load it).
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMLENS_")}
    # json is imported by the report line itself: take the list before that.
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code
            + "\nimport sys; _m = sorted(sys.modules)\n"
            + REPORT.replace("sorted(sys.modules)", "_m"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_production_monitor_loads_no_heavy_module(tmp_path: object) -> None:
    bare = _modules("pass", tmp_path)
    # The public path, as benchmarks/bench_footprint.py measures it; the health check
    # and the leak check (its first one runs on the first sample) are on it too.
    started = _modules(
        "import time\n"
        "import memlens\n"
        "m = memlens.Monitor(\n"
        "    memlens.load_config(None, mode='production', persist_history=False)\n"
        ").start()\n"
        "time.sleep(0.3)\n"
        "assert m.health().status == 'ok'\n"
        "m.check_leaks()\n"
        "m.stop()\n"
        "assert m.samples >= 1, m.samples",
        tmp_path,
    )
    assert not (started - bare) & HEAVY, sorted((started - bare) & HEAVY)
    assert not [m for m in started if m.startswith(NOT_ON_THE_PATH)]
    # Persisting nothing, it does not even load the history file's code.
    assert not {"memlens.core.history_file", "memlens.core.store_target"} & started


def test_what_the_monitor_leaves_out_still_loads_when_asked(tmp_path: object) -> None:
    # The lazy parts work: leak findings (the findings model) and the session view.
    loaded = _modules(
        "import memlens\n"
        "m = memlens.Monitor(\n"
        "    memlens.load_config(None, mode='production', persist_history=False)\n"
        ").start()\n"
        "d = m.diagnosis()\n"
        "assert d.verdict == 'no leak', d.verdict\n"
        "assert m.to_session().kind == 'monitor'\n"
        "m.stop()",
        tmp_path,
    )
    assert "memlens.core.findings" in loaded


def test_help_imports_no_subcommand(tmp_path: object) -> None:
    loaded = _modules(
        "import sys\n"
        "sys.argv = ['memlens', '--help']\n"
        "from memlens.cli.main import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass",
        tmp_path,
    )
    commands = {m for m in loaded if m.startswith("memlens.cli.") and m != "memlens.cli.main"}
    assert not commands, sorted(commands)
    assert not any(
        m.startswith(("memlens.context", "memlens.report", "memlens.store")) for m in loaded
    )


def test_help_still_lists_every_command() -> None:
    from memlens.cli.main import COMMANDS

    out = subprocess.run(
        [sys.executable, "-m", "memlens", "--help"], capture_output=True, text=True, check=True
    )
    for name, (_module, short_help) in COMMANDS.items():
        assert f"{name}  " in out.stdout and short_help in out.stdout, name


def test_the_default_production_monitor_persists_history_without_the_store(
    tmp_path: object,
) -> None:
    # The default configuration (persist_history = true, the default store) with a
    # flush on the sampling thread and the final one at stop: the history goes to
    # its file next to the database (memlens.core.history_file), and the store, its
    # sqlite3, json, dataclasses and the findings model never load.
    bare = _modules("pass", tmp_path)
    loaded = _modules(
        "import os, time\n"
        "import memlens\n"
        "m = memlens.Monitor(memlens.load_config(None, mode='production',\n"
        "    service_name='fp', sampling_interval=0.05, history_flush_interval=0.1)).start()\n"
        "assert m.config.persist_history\n"
        "time.sleep(0.5)\n"
        "m.stop()\n"
        "assert m.flush_errors == 0 and m.last_flush is not None, m.last_flush_error\n"
        "assert os.path.getsize('.memlens/memlens.db.history/monitor-fp.mlh') > 0\n"
        "assert not os.path.exists('.memlens/memlens.db')",
        tmp_path,
    )
    # Session.to_dict deep-copies the analyses: `copy` (60 KiB) is the one addition.
    heavy = HEAVY - {"copy"}
    assert not (loaded - bare) & heavy, sorted((loaded - bare) & heavy)
    assert not [m for m in loaded if m.startswith(NOT_ON_THE_PATH)]
    # hashlib loads OpenSSL's libcrypto (~3.7 MiB resident); the checksum uses
    # CPython's built-in SHA-256 (memlens.core.digest) instead.
    assert not {"hashlib", "_hashlib"} & (loaded - bare), sorted({"hashlib", "_hashlib"} & loaded)
    # And the store, opened by any command, has the monitor's session.
    from memlens.store import open_store

    stored = open_store(os.path.join(str(tmp_path), ".memlens", "memlens.db")).load("monitor-fp")
    assert stored.kind == "monitor" and stored.status == "completed"
    assert stored.series.count >= 3


def test_builtin_sha256_matches_hashlib() -> None:
    import hashlib

    from memlens.core.digest import sha256_hex

    for data in (b"", b"abc", bytes(range(256)) * 1000):
        assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
