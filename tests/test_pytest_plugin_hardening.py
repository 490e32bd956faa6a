"""The pytest markers under bad arguments and logging tests (issue #14)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_logging_test_is_not_a_leak_and_bad_arguments_are_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import logging
        import pytest

        log = logging.getLogger("app")

        @pytest.mark.no_leaks(budget=8)
        def test_logs_a_warning_every_call():
            log.warning("retrying the payment call")

        @pytest.mark.limit_memory("lots")
        def test_bad_limit():
            pass

        @pytest.mark.limit_leaks("1 KB", iterations="many")
        def test_bad_iterations():
            pass

        @pytest.mark.no_leaks(budget=[1])
        def test_bad_budget():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=1, failed=3)
    out = result.stdout.str()
    assert "Traceback" not in out and "MarkupError" not in out
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.limit_memory: invalid limit 'lots'*",
            "*@pytest.mark.limit_leaks: invalid iterations='many': expected a number*",
            "*@pytest.mark.no_leaks: invalid budget=[[]1[]]: expected a number*",
        ]
    )
    assert "test leaks memory" not in out
