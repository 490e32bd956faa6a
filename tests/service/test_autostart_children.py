"""Autostart with multiprocessing spawn children (issue #14): each child has its own
session and no endpoints; nothing says "not started"; every session is flushed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from memlens.service.bootstrap import PATH as BOOTSTRAP
from memlens.store import open_store

PROGRAM = """
import multiprocessing as mp

def work(n):
    data = [bytearray(1000) for _ in range(2000)]
    return n + len(data)

if __name__ == "__main__":
    pool = mp.get_context("spawn").Pool(2)
    print(sum(pool.map(work, range(4))))
    pool.close()  # workers exit normally (the with-block would terminate them)
    pool.join()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_spawn_children_get_their_own_sessions_without_endpoints(tmp_path: Path) -> None:
    (tmp_path / "jobs.py").write_text(PROGRAM)
    db = tmp_path / "m.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMLENS_")}
    env.update(
        {
            "MEMLENS_MONITOR": "1",
            "MEMLENS_MODE": "production",
            "MEMLENS_DB": str(db),
            "MEMLENS_HTTP_ENABLED": "1",
            "MEMLENS_HTTP_PORT": str(_free_port()),
            "PYTHONPATH": os.pathsep.join([BOOTSTRAP, env.get("PYTHONPATH", "")]),
        }
    )
    run = subprocess.run(
        [sys.executable, "jobs.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(sum(n + 2000 for n in range(4)))
    assert "not started" not in run.stderr and "Address already in use" not in run.stderr
    rows = open_store(db).list(kind="monitor")
    names = sorted(r.name for r in rows)
    assert "jobs" in names, names
    children = [n for n in names if n.startswith("jobs-child-")]
    # one session per child process (the pool's two workers and spawn's resource
    # tracker), not one shared "-c" session
    assert len(children) >= 2, names
    assert all(r.status == "completed" for r in rows), [(r.name, r.status) for r in rows]
