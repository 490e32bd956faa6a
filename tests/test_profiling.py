import asyncio
import tracemalloc

import pytest

import memlens
from memlens.core.errors import ConfigError
from memlens.core.session import Session
from memlens.core.units import format_bytes
from memlens.profiling import Profiler, profile, session

_KEEP = []


def _grow(n):
    _KEEP.append([bytes(1000) for _ in range(n)])


def test_session_context_manager_measures():
    with session("block", description="grow", interval=0.01) as prof:
        _grow(5000)
    s = prof.session
    assert isinstance(s, Session)
    assert s.status == "completed" and s.name == "block" and s.description == "grow"
    assert s.duration > 0 and len(s.series) >= 2
    assert s.peak_rss >= s.final_rss > 0
    assert s.top_sites and s.top_sites[0].function == "_grow"
    assert s.top_sites[0].size_diff >= 5000 * 1000
    assert s.final_traced > 0 and s.peak_traced >= s.final_traced
    assert s.gc and s.metadata.pid > 0 and s.metadata.ended_at
    assert not tracemalloc.is_tracing()
    assert Session.from_json(s.to_json()) == s
    _KEEP.clear()


def test_start_stop_and_no_trace():
    prof = Profiler("manual", trace=False, interval=0.01).start()
    _grow(100)
    s = prof.stop()
    assert s.traced is False and s.top_sites == [] and "traced" not in s.series.fields
    assert prof.stop() is s  # stopping twice is harmless
    _KEEP.clear()


def test_failure_and_interrupt_are_recorded():
    prof = session("boom", interval=0.01)
    with pytest.raises(ValueError), prof:
        raise ValueError("bad input")
    assert prof.session.status == "failed"
    assert prof.session.error == "ValueError: bad input"
    prof = session("ctrl-c", interval=0.01)
    with pytest.raises(KeyboardInterrupt), prof:
        raise KeyboardInterrupt
    assert prof.session.status == "interrupted"


def test_async_context_manager_and_decorators():
    async def main():
        async with session("async", interval=0.01) as prof:
            await asyncio.sleep(0.02)
            _grow(10)
        return prof.session

    assert asyncio.run(main()).status == "completed"

    @profile
    def sync_work(n):
        _grow(n)
        return n

    assert sync_work(50) == 50
    assert sync_work.last_session.name.endswith("sync_work")

    @profile(name="named", interval=0.01, trace=False)
    async def async_work():
        await asyncio.sleep(0.01)
        return "done"

    assert asyncio.run(async_work()) == "done"
    assert async_work.last_session.name == "named"
    assert async_work.last_session.traced is False
    _KEEP.clear()


@pytest.mark.parametrize("bad", [0, -1, "soon", float("nan"), float("inf")])
def test_invalid_interval_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="interval"):
        Profiler(interval=bad)


def test_public_api():
    assert memlens.session is session
    assert memlens.profile is profile
    assert memlens.Profiler is Profiler
    assert memlens.Session is Session


MB = 1_000_000


def test_decorator_reports_the_peak_during_the_call_not_before_it():
    """Memory freed before return is gone from the sites; the call's peak is not."""
    tracemalloc.start()
    try:
        earlier = bytearray(50 * MB)  # a process peak before the call
        del earlier
        outer = Profiler("outer", interval=1).start()

        @profile
        def transient():
            scratch = bytearray(20 * MB)
            del scratch
            return 1

        assert transient() == 1
        s = transient.last_session
        assert s.final_traced - s.start_traced < 1 * MB  # nothing of it is left ...
        assert 20 * MB <= s.peak_traced_growth < 21 * MB  # ... but the peak says 20 MB
        assert s.peak_traced < 50 * MB  # the earlier 50 MB is not this call's
        assert f"+{format_bytes(s.peak_traced_growth)} over the start" in _summary(s)
        # The enclosing session's peak is kept although the call reset tracemalloc's.
        assert outer.stop().peak_traced >= 20 * MB
    finally:
        tracemalloc.stop()


def _summary(s: Session) -> str:
    from memlens.report.terminal import render_text

    return render_text(s, width=200)


def test_async_start_and_stop_profiling():
    """The seed's API: ``await start_profiling(...)`` names the session and returns its
    id; ``await stop_profiling()`` returns it, stopping off the event loop."""
    ran_during_stop = []

    async def main():
        profiler = Profiler(interval=0.01)
        session_id = await profiler.start_profiling(
            session_name="analysis", description="during processing"
        )
        data = [bytearray(1000) for _ in range(1000)]
        loop_tick = asyncio.get_running_loop().create_task(_tick(ran_during_stop, profiler))
        result = await profiler.stop_profiling()
        ticked_before_return = list(ran_during_stop)
        await loop_tick
        return session_id, result, data, ticked_before_return

    session_id, result, data, ticked = asyncio.run(main())
    assert result.id == session_id and result.name == "analysis"
    assert result.description == "during processing"
    assert result.status == "completed"
    assert result.top_sites and result.final_traced >= len(data) * 1000
    # The loop served another task before the stop returned: it ran in a worker thread.
    assert ticked == ["tick"]


async def _tick(out, profiler):
    out.append("tick")


def test_sessions_in_two_threads_show_only_the_users_sites():
    """Overlapping sessions in two threads: each names its own line; neither shows a
    thread's start-up in threading.py or the <string> code memlens's imports generate."""
    import threading

    from memlens.heap.frames import MEMLENS_DIR

    keep = {}
    results = {}
    start = threading.Barrier(2)

    def work(name):
        start.wait()
        with memlens.session(name, interval=0.05) as p:
            keep[name] = [bytearray(200) for _ in range(5000)]
        results[name] = p.session

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in results.values():
        top = s.top_sites[0]
        assert top.filename == __file__ and top.function == "work" and top.count_diff >= 5000
        for site in s.top_sites:
            assert not site.filename.startswith("<"), site.location
            assert site.filename != threading.__file__, site.location
            assert not any(frame.startswith(MEMLENS_DIR) for frame in site.stack), site.stack


@pytest.mark.parametrize("options", [{}, {"sample": 4096}], ids=["traced", "sampled"])
def test_decorator_stacks_hold_no_memlens_frames(options: dict) -> None:
    """The decorator's own wrapper (``profiling.py``) sits between the caller and the
    function on every stack: it must not appear in the sites' stacks (#14)."""
    from memlens.heap.frames import MEMLENS_DIR
    from memlens.heap.native_ext import load_extension

    if options and load_extension("_sampler") is None:
        pytest.skip("memlens._sampler was not built")

    @profile(**options)
    def build():
        return [bytearray(2000) for _ in range(3000)]

    kept = build()
    s = build.last_session
    top = s.top_sites[0]
    assert top.filename == __file__ and top.function == "build"
    stacks = [site.stack for site in s.top_sites]
    stacks += [site["stack"] for site in s.analyses.get("peak_sites", [])]
    # build's line, then its caller in this file: no wrapper frame in between.
    assert [f.rsplit(":", 1)[0] for f in top.stack[:3]] == [__file__] * 3, top.stack
    for stack in stacks:
        assert not any(frame.startswith(MEMLENS_DIR) for frame in stack), stack
    assert len(kept) == 3000
