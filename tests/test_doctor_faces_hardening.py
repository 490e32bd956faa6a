"""The doctor's faces show the user's names as text (issue #14): a real leak whose file
name, dict keys, type name and source line carry rich markup, terminal escape
sequences, a bidirectional override and HTML payloads. Text output (direct, and of the
stored diagnosis through ``show`` and ``report``) prints them as visible escapes and
never parses them; the HTML page and the session report keep them inert in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.browser import render
from tests.memlens_cli import memlens

RUN = "document.documentElement.setAttribute('data-pwned','1')"

# Written before memlens ran on it; the truth: one leak at line 8 of this file, a
# module-level dict `_registry` keyed by a payload, each value one `Evil` object.
SCENARIO = f'''\
RUN = "{RUN}"
Evil = type('<img src=x onerror="' + RUN + '">[/x]\\x1b[2J\\u202e', (), {{}})
_registry = {{}}


def step(i):
    # [/bogus] <script>{RUN}</script>
    _registry["<script>" + RUN + "</script>[/x]\\x1b]0;owned\\x07" + str(i)] = Evil()
'''
LEAK_LINE = 8


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("doctor-faces")
    folder = root / "evil["  # the file's path reads `evil[/x]…`: a closing markup tag
    folder.mkdir()
    (folder / "x]\x1b[31m\u202e<b>.py").write_text(SCENARIO)
    return root


FILE = "evil[/x]\x1b[31m\u202e<b>.py"  # relative to the fixture's folder


def _assert_text_face(out: str) -> None:
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    # Shown, escaped, where each comes from: the file name, the source line, the key.
    assert "evil[/x]\\x1b[31m\\u202e<b>.py" in out
    assert f"evil[/x]\\x1b[31m\\u202e<b>.py:{LEAK_LINE}" in out
    assert '"</script>[/x]\\x1b]0;owned\\x07"' in out  # the source line, as written
    assert "LEAK" in out and "growing collection" in out


def test_doctor_text_faces_show_hostile_names_as_text(hostile: Path) -> None:
    db = hostile / "m.db"
    direct = memlens("doctor", FILE, "--max-iterations", "200", "--db", str(db), db=db, cwd=hostile)
    assert direct.returncode == 1, direct.stderr
    assert "Traceback" not in direct.stderr
    _assert_text_face(direct.stdout)
    saved = re.search(r"saved session (\S+)", direct.stderr)
    assert saved, direct.stderr
    for args in (("show", saved.group(1)), ("report", saved.group(1), "--format", "text")):
        stored = memlens(*args, db=db, cwd=hostile)
        assert stored.returncode == 0, stored.stderr
        assert "Traceback" not in stored.stderr
        _assert_text_face(stored.stdout)


@pytest.mark.browser
def test_doctor_html_faces_keep_hostile_names_inert(hostile: Path) -> None:
    db = hostile / "h.db"
    page = hostile / "doctor.html"
    run = memlens(
        "doctor",
        FILE,
        "--max-iterations",
        "200",
        "--format",
        "html",
        "-o",
        str(page),
        "--db",
        str(db),
        db=db,
        cwd=hostile,
    )
    assert run.returncode == 1, run.stderr
    saved = re.search(r"saved session (\S+)", run.stderr)
    assert saved, run.stderr
    report = hostile / "report.html"
    stored = memlens("report", saved.group(1), "--format", "html", "-o", str(report), db=db)
    assert stored.returncode == 0, stored.stderr
    for html in (page, report):
        dom = render(html)
        assert 'data-pwned="1"' not in dom, html.name
        assert "<script>document" not in dom  # payloads are text nodes, not elements
        assert "<img src=" not in dom
        assert f"&lt;b&gt;.py:{LEAK_LINE}" in dom  # the site, shown as text
        assert "&lt;script&gt;" in dom  # the key or the source line, shown as text
