"""Units in one place: bytes and tokens are ints inside memlens; humans see text.

Parsing accepts what people type ("100 MB", "2GiB", "512k", "1.5 MiB", "4096");
decimal suffixes (KB, MB) are powers of 1000 and binary ones (KiB, MiB) powers of 1024,
except the bare single letters (k, m, g), which follow the common shell habit of 1024.
"""

from __future__ import annotations

import re

from memlens.core.errors import ConfigError

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")

_MULTIPLIERS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}


def parse_size(text: str | int | float) -> int:
    """Parse a human size such as ``"100 MB"`` or ``"2 GiB"`` into bytes.

    Raises :class:`ConfigError` for anything that is not a non-negative size.
    """
    if isinstance(text, bool):
        raise ConfigError(f"invalid size {text!r}: expected e.g. '100 MB' or '2 GiB'")
    if isinstance(text, (int, float)):
        if text < 0:
            raise ConfigError(f"invalid size {text!r}: must not be negative")
        return int(text)
    match = _SIZE_RE.match(str(text))
    if not match:
        raise ConfigError(f"invalid size {text!r}: expected e.g. '100 MB' or '2 GiB'")
    number, suffix = match.groups()
    multiplier = _MULTIPLIERS.get(suffix.lower())
    if multiplier is None:
        raise ConfigError(
            f"invalid size unit {suffix!r} in {text!r}: use B, KB, MB, GB, KiB, MiB or GiB"
        )
    return int(float(number) * multiplier)


def format_bytes(n: float, signed: bool = False) -> str:
    """Render a byte count for people: ``1536 -> '1.5 KiB'``."""
    sign = ""
    if signed:
        sign = "+" if n >= 0 else "-"
    elif n < 0:
        sign = "-"
    value = abs(float(n))
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            if unit == "B":
                return f"{sign}{int(value)} B"
            return f"{sign}{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_tokens(n: float) -> str:
    """Render a token count for people: ``34500 -> '34.5k tokens'``."""
    value = float(n)
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.2f}M tokens"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k tokens"
    return f"{int(value)} tokens"


def format_duration(seconds: float) -> str:
    """Render a duration: ``0.0123 -> '12.3 ms'``, ``95 -> '1m 35s'``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def parse_duration(text: str | int | float) -> float:
    """Parse ``"0.5"``, ``"500ms"``, ``"2s"``, ``"1m"`` into seconds (must be > 0)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = re.match(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$", str(text))
        if not match:
            raise ConfigError(f"invalid duration {text!r}: expected e.g. '0.5', '500ms', '2s'")
        number, unit = match.groups()
        scale = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}[unit]
        value = float(number) * scale
    if not value > 0:
        raise ConfigError(f"invalid duration {text!r}: must be greater than zero")
    return value
