"""Watch untraced, look traced: the verdict's schedule runs without tracemalloc, and
tracing starts only for a short look at the calls after growth was established."""

from __future__ import annotations

import gc
import tracemalloc

from memlens.heap.doctor import doctor
from memlens.heap.doctor.iterations import Engine, Options
from memlens.heap.doctor.look import LOOK_CHECKPOINTS, LOOK_SETTLE, MAX_SPACING
from memlens.heap.doctor.sites import CodeMap
from tests.doctor.conftest import line_of

_kept: list[bytes] = []
# Whether tracemalloc ran during call i (preallocated: recording keeps nothing).
_traced = bytearray(6000)


class _Node:
    def __init__(self, prev: _Node | None, i: int) -> None:
        self.prev = prev
        self.i = i


class _Chain:
    head: _Node | None = None


chain = _Chain()


def _line(text: str) -> str:
    return line_of(__file__, text)


def test_a_flat_step_is_never_traced() -> None:
    seen = bytearray(6000)

    def churn(i: int) -> None:
        seen[i] = tracemalloc.is_tracing()
        rows = [{"id": k, "v": str(k) * 4} for k in range(50)]
        del rows

    diag = doctor(churn)
    assert diag.verdict == "no leak", diag.reason
    assert not any(seen), "tracemalloc ran during a diagnosis that saw no growth"
    assert "traced_look" not in diag.details


def test_a_leak_is_watched_untraced_and_its_site_found_in_a_short_traced_look() -> None:
    _traced[:] = bytes(len(_traced))

    def leak(i: int) -> None:
        _traced[i] = tracemalloc.is_tracing()
        _kept.append(b"x" * 300 + str(i).encode())

    diag = doctor(leak)
    assert diag.verdict == "leak", diag.reason
    first = diag.findings[0]
    assert first.site.endswith(_line("_kept.append(")), first.site
    assert "global _kept" in first.root
    look = diag.details["traced_look"]
    untraced = _traced[: look["from_call"]]
    traced = _traced[look["from_call"] : diag.iterations]
    # The whole schedule (warm-up, growth first seen, the widened window) untraced…
    assert not any(untraced) and look["from_call"] >= 4 * 160
    # …and only the look traced, settling and checkpoints included.
    assert all(traced) and 0 < len(traced) <= LOOK_SETTLE + LOOK_CHECKPOINTS * MAX_SPACING


def test_objects_piling_up_outside_any_collection_are_seen_untraced() -> None:
    # A linked chain grows no list, dict or set, and its nodes are too small for the
    # C allocator to see: the interpreter's allocated blocks are what shows it.
    def link(i: int) -> None:
        chain.head = _Node(chain.head, i)

    diag = doctor(link)
    assert diag.verdict == "leak", diag.reason
    assert diag.findings[0].site.endswith(_line("chain.head = _Node")), diag.findings[0].site
    assert "chain" in diag.findings[0].root


def _checkpoints_without_steps(n: int) -> list[int]:
    engine = Engine(CodeMap(()), Options())
    engine.begin()
    try:
        engine.warmup = 0
        for _ in range(n):
            engine.iterations += 5
            engine._checkpoint()
        return [cp.blocks for cp in engine.checkpoints]
    finally:
        engine.end()


def test_the_doctors_own_checkpoints_do_not_count_as_the_programs_blocks() -> None:
    # Checkpoints with no step between them: whatever the doctor keeps (the
    # checkpoints themselves, its signals) or leaves in the free lists is its own.
    blocks = _checkpoints_without_steps(30)
    assert max(blocks[1:]) - min(blocks[1:]) <= 8, blocks


def test_with_the_gc_disabled_the_free_lists_do_not_count_as_growth() -> None:
    gc.disable()
    try:
        blocks = _checkpoints_without_steps(30)
    finally:
        gc.enable()
    assert max(blocks[1:]) - min(blocks[1:]) <= 8, blocks
