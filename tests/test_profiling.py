import asyncio
import tracemalloc

import pytest

import memlens
from memlens.core.errors import ConfigError
from memlens.core.session import Session
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
