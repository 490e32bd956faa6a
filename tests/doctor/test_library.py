"""Leaks held by real libraries' registries: named in the library's own words, reported
once, fixed with the library's own call; and the same answer run after run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from memlens.heap.doctor import Diagnosis
from memlens.heap.doctor.release import counterparts
from tests.doctor.conftest import CORPUS, run_cli, run_scenario

REAL = os.path.join(CORPUS, "real")


def _cli_json(name: str, cwd: str = REAL) -> Diagnosis:
    proc = run_cli(os.path.join(cwd, name), "--format", "json", "--no-save", cwd=CORPUS)
    assert proc.returncode in (0, 1, 3), proc.stderr
    return Diagnosis.from_json(proc.stdout)


SIGNAL_SCENARIO = """
import blinker

job_done = blinker.Signal("job-done")


class Listener:
    def __init__(self, i):
        self.buffer = bytearray(1200)

    def on_done(self, sender, **kw):
        self.buffer[:1] = b"x"


def step(i):
    listener = Listener(i)
    job_done.connect(listener.on_done, weak=False)
"""


def test_signal_registry_named_reported_once_with_its_own_release_call(tmp_path) -> None:
    (tmp_path / "signal_case.py").write_text(SIGNAL_SCENARIO)
    diag = _cli_json("signal_case.py", cwd=str(tmp_path))
    assert diag.verdict == "leak"
    assert len(diag.findings) == 1, [(f.site, f.root) for f in diag.findings]
    f = diag.findings[0]
    assert f.category == "listener"
    assert "job_done" in f.root and f.library == "blinker"
    # receivers, _by_sender and _by_receiver are one leak, not three.
    assert f.remedies[0].snippet.startswith("job_done.disconnect(listener.on_done)")


def test_library_owned_closure_registry_is_a_listener_with_the_librarys_call() -> None:
    got = run_scenario(os.path.join("real", "leak_django_request_finished.py"))
    assert got["verdict"] == "leak"
    assert got["category"] == "listener"
    assert "request_finished" in got["root"] and got["library"] == "django"


def test_context_variable_per_request_is_held_by_the_threads_context() -> None:
    got = run_scenario(os.path.join("real", "leak_contextvar_per_request.py"))
    assert got["verdict"] == "leak"
    assert "contextvars context of thread" in got["root"]


def test_counterparts_are_derived_from_the_verb() -> None:
    assert counterparts("connect") == ["disconnect"]
    assert counterparts("add_done_callback")[0] == "remove_done_callback"
    assert "removeHandler" in counterparts("addHandler")
    assert counterparts("mount") == []


def test_same_verdict_site_and_root_five_times_cli_and_api(tmp_path) -> None:
    (tmp_path / "steady.py").write_text(
        "_orders = {}\n\ndef step(i):\n    _orders[i] = ('order %d ' % i) * 30\n"
    )
    api = (
        "import json, sys; sys.path.insert(0, '.');"
        "from memlens.heap.doctor.targets import load;"
        "from memlens.heap.doctor import doctor;"
        "t = load('steady.py');"
        "d = doctor(t.step, name=t.name, user_roots=t.user_roots, budget=10);"
        "print(d.to_json(indent=None))"
    )
    answers = set()
    for k in range(5):
        if k % 2:
            args = [sys.executable, "-c", api]
        else:
            cli = ["-m", "memlens", "doctor", "steady.py", "-f", "json", "--budget", "10"]
            args = [sys.executable, *cli, "--no-save"]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode in (0, 1), proc.stderr
        d = json.loads(proc.stdout)
        first = d["findings"][0]
        answers.add((d["verdict"], first["site"], first["root"], first["category"]))
    assert len(answers) == 1, answers
    assert next(iter(answers))[0] == "leak"


def test_an_object_rebuilt_bigger_on_every_call_is_found_and_is_a_growing_collection() -> None:
    # One DataFrame, concatenated onto each call: no more objects, only bigger ones.
    got = run_scenario(os.path.join("real", "leak_pandas_concat_history.py"))
    assert got["verdict"] == "leak", got
    assert "global history" in got["root"] and got["category"] == "growing_collection"


def test_the_users_data_kept_in_a_librarys_wrapper_is_the_site() -> None:
    # The Futures executor.submit returns are bigger, but they are the library's
    # wrapper around the page the user's render() made: the page is the leak.
    got = run_scenario(os.path.join("real", "leak_futures_kept_results.py"))
    assert got["verdict"] == "leak", got
    assert got["site"].endswith("leak_futures_kept_results.py:17"), got
    assert "global _jobs" in got["root"]


def test_native_memory_behind_a_growing_extension_collection_is_that_collection() -> None:
    # upb keeps a repeated field's entries in its C arena, which grows in blocks: the
    # growth is native, and the line's long-lived sized object is what holds it.
    got = run_scenario(os.path.join("real", "leak_protobuf_repeated_field.py"))
    assert got["verdict"] == "leak", got
    assert got["site"].endswith("leak_protobuf_repeated_field.py:16"), got
    assert "global audit" in got["root"] and got["category"] == "growing_collection"


def test_native_memory_of_a_bounded_caches_objects_is_not_a_leak() -> None:
    # sqlite3's statement cache is an lru_cache bounded at cached_statements; each
    # cached statement holds its prepared C statement: native growth on the line
    # that fills a bounded cache is that cache filling.
    got = run_scenario(os.path.join("real", "ok_sqlite3_statement_cache_late.py"))
    assert got["verdict"] == "no leak", got
