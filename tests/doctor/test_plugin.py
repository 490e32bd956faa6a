"""The pytest markers, run in a real inner pytest session (pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import linecache, logging, re
        import pytest

        _kept = []

        @pytest.fixture
        def payload():
            return "p" * 800

        @pytest.mark.no_leaks(budget=12)
        def test_leaky(payload):
            _kept.append(payload + str(len(_kept)))

        @pytest.mark.no_leaks(budget=12)
        def test_clean(payload):
            assert len(payload.upper()) == 800

        @pytest.mark.no_leaks(budget=12)
        def test_interpreter_caches():
            n = len(_kept)
            re.compile(r"item-(\\d+)-%d" % (n % 40)).match("item-1-0")
            logging.getLogger("plugin.test").debug("n=%s", n)
            linecache.getline(__file__, 1)

        @pytest.mark.limit_leaks("64 KB", budget=12)
        def test_small_leak_under_limit():
            _kept.append(len(_kept) * 1.5)

        @pytest.mark.limit_leaks("10 B", budget=12)
        def test_leak_over_limit():
            _kept.append("q" * 300 + str(len(_kept)))

        @pytest.mark.limit_memory("1 MB")
        def test_too_much_memory():
            block = bytearray(4_000_000)
            del block

        @pytest.mark.limit_memory("10 MB")
        def test_within_memory():
            block = bytearray(100_000)
            del block
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*test_leaky*",
            "*LEAK*test_markers.py:12*growing collection*",
            "*held by*global _kept*",
            "*test leaks * per run (limit 10 B)*",
            "*test allocated 3.8 MiB at peak, over the limit of 1 MB*",
        ]
    )
    assert "test_interpreter_caches" not in "\n".join(
        line for line in result.stdout.lines if line.startswith("FAILED")
    )


def test_marker_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.limit_leaks()
        def test_x():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*limit_leaks needs a limit*"])
    assert result.ret != 0
