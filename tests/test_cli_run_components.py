"""``--component`` naming the main module (issue #14): it runs as ``__main__``, so a
module prefix naming it used to match nothing and report 0 B without a word."""

from __future__ import annotations

import json
from pathlib import Path

from tests.memlens_cli import memlens

INGEST = """
kept = []
def load():
    for i in range(50_000):
        kept.append("row %d " % i * 4)
load()
"""


def test_component_naming_the_script_counts_its_memory(tmp_path: Path) -> None:
    (tmp_path / "ingest.py").write_text(INGEST)
    out = tmp_path / "out.json"
    result = memlens(
        "run",
        "--no-html",
        "--json",
        str(out),
        "--component",
        "index=ingest",
        "ingest.py",
        db=tmp_path / "m.db",
    )
    assert result.returncode == 0, result.stderr
    components = {c["name"]: c["current"] for c in json.loads(out.read_text())["components"]}
    assert components["index"] > 2_000_000, components  # ~4.8 MB of strings


def test_component_naming_the_main_module_of_dash_m_is_warned(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "job.py").write_text(INGEST)
    result = memlens(
        "run", "--no-html", "--component", "j=pkg.job", "-m", "pkg.job", db=tmp_path / "m.db"
    )
    assert result.returncode == 0, result.stderr
    assert "component j=pkg.job names the main module" in result.stderr
    assert "j=pkg/job.py" in result.stderr
