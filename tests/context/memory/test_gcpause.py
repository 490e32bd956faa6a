"""The collector paused during a fit: restored after, kept off if the caller had it off."""

from __future__ import annotations

import gc
import threading

import pytest

from memlens.context.memory import fit_messages
from memlens.context.memory.gcpause import gc_paused
from tests.context.memory.agent_sessions import openai_session


@pytest.fixture
def collector_on():
    # Put the collector back as it was, whatever the test left: a test that ends with
    # it disabled would otherwise leave it off for every later test in the process.
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_inside_and_restored_after(collector_on):
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: still off, and the inner end does not enable it
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_restored_when_the_block_raises(collector_on):
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_a_collector_the_caller_disabled_stays_disabled(collector_on):
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_on_two_threads(collector_on):
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_paused():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=other)
    thread.start()
    inside.wait(10)
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's pause is still under way
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_a_fit_runs_paused_and_leaves_the_collector_as_it_found_it(collector_on, monkeypatch):
    import memlens.context.memory.messages as module

    during: list[bool] = []
    read = module.read_request

    def spy(*args, **kw):
        during.append(gc.isenabled())
        return read(*args, **kw)

    monkeypatch.setattr(module, "read_request", spy)
    messages = openai_session(30)
    result = fit_messages(messages, budget=8_000)
    assert during and not any(during)
    assert gc.isenabled()
    assert result.tokens_after <= 8_000
    gc.disable()
    fit_messages(messages, budget=8_000)
    assert not gc.isenabled()


def test_the_same_fit_with_and_without_the_collector(collector_on, monkeypatch):
    messages = openai_session(30)
    paused = fit_messages(messages, budget=8_000)
    import memlens.context.memory.messages as module

    monkeypatch.setattr(module, "gc_paused", _no_pause)
    plain = fit_messages(messages, budget=8_000)
    assert paused.messages == plain.messages
    assert paused.tokens_after == plain.tokens_after


class _no_pause:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
