import pytest

from memlens.core.errors import ConfigError
from memlens.core.units import (
    format_bytes,
    format_duration,
    format_tokens,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100 MB", 100_000_000),
        ("2 GiB", 2 * 1024**3),
        ("512k", 512 * 1024),
        ("1.5 MiB", int(1.5 * 1024**2)),
        ("4096", 4096),
        ("24MB", 24_000_000),
        ("1 KB", 1000),
        (123, 123),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "MB", "12 parsecs", "-5 MB", -1, True, "1.2.3 MB"])
def test_parse_size_rejects(bad):
    with pytest.raises(ConfigError):
        parse_size(bad)


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(-3 * 1024**2) == "-3.0 MiB"
    assert format_bytes(2048, signed=True) == "+2.0 KiB"


def test_format_tokens_and_duration():
    assert format_tokens(34_500) == "34.5k tokens"
    assert format_tokens(12) == "12 tokens"
    assert format_duration(0.0123) == "12.3 ms"
    assert format_duration(95) == "1m 35s"


@pytest.mark.parametrize(
    ("text", "seconds"), [("0.5", 0.5), ("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), (3, 3.0)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["0", "-1", "soon", 0])
def test_parse_duration_rejects(bad):
    with pytest.raises(ConfigError):
        parse_duration(bad)
