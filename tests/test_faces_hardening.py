"""Every face shows stored and user text as text (issue #14): no rich markup parsed,
no escape sequences reaching the terminal, no secrets from argv, and report files
written without replacing what is at the ``-o`` path."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from memlens.core.redact import redact_argv
from memlens.core.session import AllocationSite, ComponentUsage
from memlens.report.output import ReportWriteError, write_atomically
from memlens.report.safe import printable
from memlens.store import SqliteStore
from tests.memlens_cli import memlens, one_line_error
from tests.sample_sessions import make_session

SECRET = "sk-live-0123456789abcdefghijklmnop"
NAMES = ["[/x]", "[bold]a[blink]b.py", "\x1b[31mred\x1b[0m", "evil\u202etxt.py"]


@pytest.fixture
def hostile_store(tmp_path: Path) -> Path:
    db = tmp_path / "m.db"
    with SqliteStore(db) as store:
        for number, name in enumerate(NAMES):
            session = make_session(name, session_id=f"20240101-00000{number}-aaaa000{number}")
            session.top_sites[0] = AllocationSite(
                filename=f"/app/{name}.py", lineno=3, function=name, size=10**6, count=5
            )
            session.components = [ComponentUsage(name=name, current=10, peak=10)]
            session.metadata.argv = ["svc.py", f"--api-key={SECRET}", "--token", SECRET]
            store.save(session)
    return db


def _assert_shown_as_text(out: str) -> None:
    assert "\x1b" not in out and "\u202e" not in out
    assert "[/x]" in out
    assert "\\x1b[31mred" in out and "\\u202e" in out


def test_sessions_show_and_report_show_names_as_text(hostile_store: Path) -> None:
    listing = memlens("sessions", db=hostile_store)
    assert listing.returncode == 0, listing.stderr
    _assert_shown_as_text(listing.stdout)
    assert "[bold]a[blink]b.py" in listing.stdout
    for number in range(len(NAMES)):
        for args in (("show",), ("report", "--format", "text")):
            result = memlens(*args, f"aaaa000{number}", db=hostile_store)
            assert result.returncode == 0, result.stderr
            assert "Traceback" not in result.stderr
            assert printable(NAMES[number], one_line=True) in result.stdout
            assert "\x1b" not in result.stdout and "\u202e" not in result.stdout


def test_secrets_in_argv_never_stored_or_shown(hostile_store: Path, tmp_path: Path) -> None:
    raw = hostile_store.read_bytes()
    assert SECRET.encode() not in raw
    data = json.loads(memlens("report", "aaaa0000", "--format", "json", db=hostile_store).stdout)
    assert data["metadata"]["argv"] == ["svc.py", "--api-key=***", "--token", "***"]
    page = tmp_path / "r.html"
    result = memlens("report", "aaaa0000", "--format", "html", "-o", str(page), db=hostile_store)
    assert result.returncode == 0, result.stderr
    assert SECRET not in page.read_text()
    assert "--api-key=***" in page.read_text()


def test_memlens_run_redacts_its_programs_arguments(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text("import sys\nprint(len(sys.argv))\n")
    db = tmp_path / "m.db"
    result = memlens(
        "run", "--no-trace", str(script), f"--api-key={SECRET}", "DB_PASSWORD=hunter2", db=db
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[0] == "3"  # the program still got them
    data = json.loads(memlens("report", "latest", "--format", "json", db=db).stdout)
    assert SECRET not in json.dumps(data) and "hunter2" not in json.dumps(data)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--api-key=abc"], ["--api-key=***"]),
        (["--password", "p", "x"], ["--password", "***", "x"]),
        (["--max-tokens", "100", "--author", "me"], ["--max-tokens", "100", "--author", "me"]),
        (["postgres://u:pw@db/x"], ["postgres://u:***@db/x"]),
        (["AWS_SECRET_ACCESS_KEY=abc", "ghp_" + "a" * 36], ["AWS_SECRET_ACCESS_KEY=***", "***"]),
        (["--verbose", "--token"], ["--verbose", "--token"]),
    ],
)
def test_redact_argv(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(argv) == expected


# -- report files --------------------------------------------------------------------
def test_write_keeps_a_symlink_and_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    real = tmp_path / "real.html"
    real.write_text("old")
    real.chmod(0o600)
    link = tmp_path / "link.html"
    link.symlink_to(real)
    write_atomically(link, "new")
    assert link.is_symlink() and real.read_text() == "new"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_new_report_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomically(tmp_path / "r.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.txt").stat().st_mode) == 0o600


def test_devices_are_written_into_never_replaced(tmp_path: Path) -> None:
    write_atomically(Path("/dev/null"), "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    write_atomically(fifo, "through the pipe")
    assert reader.communicate(timeout=30)[0] == "through the pipe"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    with pytest.raises(ReportWriteError, match="No space left"):
        write_atomically(Path("/dev/full"), "x")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_full_disk_keeps_the_old_report_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A write that fails part way (here: a file-size limit, as on a full disk)."""
    target = tmp_path / "report.txt"
    target.write_text("the old report")
    code = (
        "import sys\nfrom pathlib import Path\nfrom memlens.report.output import write_atomically\n"
        "try:\n    write_atomically(Path(sys.argv[1]), 'x' * 1_000_000)\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    result = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=60,
    )
    assert result.stdout.startswith("ReportWriteError cannot write"), result.stdout + result.stderr
    assert target.read_text() == "the old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]


def test_context_output_errors_are_one_line(tmp_path: Path) -> None:
    from tests.context.conftest import OPENAI

    for bad in ("/proc/x", "/dev/full", str(tmp_path / "file.txt" / "below")):
        if bad.endswith("below"):
            (tmp_path / "file.txt").write_text("a file, not a directory")
        result = memlens("context", str(OPENAI), "-o", bad, db=tmp_path / "m.db")
        assert result.returncode != 0
        one_line_error(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_context_text_shows_tool_names_as_text(tmp_path: Path) -> None:
    request = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {"type": "function", "function": {"name": name, "parameters": {}}} for name in NAMES
        ],
    }
    path = tmp_path / "r.json"
    path.write_text(json.dumps(request))
    result = memlens("context", str(path), "--top", "20", db=tmp_path / "m.db")
    assert result.returncode == 0, result.stderr
    _assert_shown_as_text(result.stdout)


def test_error_lines_do_not_pass_escape_sequences(tmp_path: Path) -> None:
    result = memlens("show", "\x1b[2Jgone", db=tmp_path / "m.db")
    assert result.returncode != 0
    assert "\x1b" not in result.stderr
