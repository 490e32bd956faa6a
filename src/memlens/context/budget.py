"""Budgets and status: parse a token budget, classify utilization."""

from __future__ import annotations

import re

from memlens.core.errors import ConfigError

#: Status boundaries (utilization of the budget): healthy below 70 %.
MODERATE = 0.70
HIGH = 0.85
CRITICAL = 0.95

STATUSES = ("healthy", "moderate", "high", "critical")

_BUDGET_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kKmM]?)\s*(?:tokens?)?\s*$")


def parse_budget(value: str | int | float | None) -> int | None:
    """Parse a token budget: ``128000``, ``"200k"``, ``"1M"`` (decimal k/M). ``None`` passes."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"invalid budget {value!r}: expected a positive token count like 200k")
    if isinstance(value, (int, float)):
        tokens = int(value)
    else:
        match = _BUDGET_RE.match(str(value))
        if not match:
            raise ConfigError(
                f"invalid budget {value!r}: expected a positive token count like 128000, 200k or 1M"
            )
        number, suffix = match.groups()
        tokens = int(float(number) * {"": 1, "k": 1000, "m": 1_000_000}[suffix.lower()])
    if tokens <= 0:
        raise ConfigError(f"invalid budget {value!r}: must be greater than zero")
    return tokens


def status_for(utilization: float) -> str:
    """``healthy`` < 70 % ≤ ``moderate`` < 85 % ≤ ``high`` < 95 % ≤ ``critical``."""
    if utilization >= CRITICAL:
        return "critical"
    if utilization >= HIGH:
        return "high"
    if utilization >= MODERATE:
        return "moderate"
    return "healthy"
