"""One typed configuration object, loaded from every source in a fixed order.

Order (later wins): defaults < ``pyproject.toml`` ``[tool.memlens]`` <
``memlens.toml`` (top level or ``[memlens]``) < environment ``MEMLENS_<FIELD>`` <
explicit keyword arguments. Invalid values fail at load time with the field name
and the accepted values.

A *mode* picks which meters run and how often; fields left unset (``None``) take
the mode's preset, so ``Config(mode="production")`` is cheap and
``Config(mode="debug")`` is thorough, while any field can still be pinned.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memlens.core.errors import ConfigError
from memlens.core.record import field, fields, record, replace
from memlens.core.units import parse_duration

MODES = ("off", "basic", "standard", "advanced", "production", "debug")
LEVELS = ("low", "medium", "high", "detailed")
BACKENDS = ("system", "gc", "tracemalloc", "smaps", "sampler")

# mode -> preset values for fields left unset.
MODE_PRESETS: dict[str, dict[str, Any]] = {
    "off": {"enabled_backends": (), "sampling_interval": 60.0},
    "basic": {"enabled_backends": ("system",), "sampling_interval": 10.0},
    "production": {"enabled_backends": ("system", "gc"), "sampling_interval": 5.0},
    # "sampler": allocation sites from the sampling tracer (memlens._sampler), ~1 %.
    "standard": {
        "enabled_backends": ("system", "gc", "smaps", "sampler"),
        "sampling_interval": 1.0,
    },
    "advanced": {
        "enabled_backends": ("system", "gc", "smaps", "sampler"),
        "sampling_interval": 1.0,
        "trace_depth": 16,
        "snapshot_interval": 60.0,
    },
    "debug": {
        "enabled_backends": ("system", "gc", "smaps", "tracemalloc"),
        "sampling_interval": 0.5,
        "trace_depth": 32,
        "snapshot_interval": 10.0,
    },
}

#: Alert thresholds of ``memlens context`` settable in ``context_thresholds``.
CONTEXT_THRESHOLDS = (
    "working_memory_warning",
    "working_memory_critical",
    "cache_hit_rate_min",
    "token_budget_warning",
    "token_budget_critical",
)

# level -> how many allocation sites/components reports keep.
LEVEL_TOP_N = {"low": 5, "medium": 10, "high": 25, "detailed": 100}

#: Share of the process CPU time the monitor's sampling tracer may cost (its cost
#: governor counts the hooks' fast path and the samples): the sampler's own
#: AUTO_BUDGET: an always-on `standard` monitor is meant to stay within 2 %.
#: Until the governor counted the hooks it governed the samples alone, and the
#: monitor took half (1 %), because the hooks alone cost ~1.5 % on a request-like
#: workload (docs/monitor.md, "Overhead").
MONITOR_SAMPLER_BUDGET = 0.02


@record(frozen=True)
class Config:
    """memlens settings. See ``docs/configuration.md`` for every field."""

    mode: str = "standard"
    level: str = "medium"
    sampling_interval: float | None = None
    memory_warning_threshold_mb: float = 1000.0
    memory_critical_threshold_mb: float = 2000.0
    memory_growth_rate_threshold_mb_per_min: float = 0.5
    enable_leak_detection: bool = True
    enable_component_tracking: bool = True
    enable_gc_monitoring: bool = True
    enabled_backends: tuple[str, ...] | None = None
    trace_depth: int | None = None
    # Share of the process CPU the monitor's sampling tracer may spend on samples.
    sampler_budget: float = MONITOR_SAMPLER_BUDGET
    snapshot_interval: float | None = None
    smaps_interval: float = 30.0
    smaps_max_rss_mb: float = 4096.0
    components: Mapping[str, str] = field(default_factory=dict)
    db_path: str | None = None
    history_flush_interval: float = 300.0
    raw_history_seconds: float = 3600.0
    http_enabled: bool = False
    http_host: str = "127.0.0.1"
    http_port: int = 0
    http_token: str | None = None
    # The always-on monitor (memlens.service); see docs/monitor.md.
    service_name: str | None = None
    persist_history: bool = True
    leak_warmup_seconds: float = 180.0
    leak_window_seconds: float = 1800.0
    leak_check_interval: float = 30.0
    threshold_hysteresis: float = 0.05
    event_queue_size: int = 1000
    # Run memlens.remedies' recovery ladder on leak alerts and the critical threshold.
    enable_recovery: bool = False
    # `memlens context` alert thresholds (fractions 0..1), see docs/context.md
    context_thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _validate(self)

    # -- derived values ------------------------------------------------------------
    def preset(self, name: str) -> Any:
        """The effective value of a mode-dependent field."""
        value = getattr(self, name)
        if value is not None:
            return value
        return MODE_PRESETS[self.mode].get(name, _FALLBACKS.get(name))

    @property
    def effective_interval(self) -> float:
        return float(self.preset("sampling_interval"))

    @property
    def effective_backends(self) -> tuple[str, ...]:
        backends = tuple(self.preset("enabled_backends"))
        if not self.enable_gc_monitoring:
            backends = tuple(b for b in backends if b != "gc")
        return backends

    @property
    def effective_trace_depth(self) -> int:
        return int(self.preset("trace_depth"))

    @property
    def effective_snapshot_interval(self) -> float:
        return float(self.preset("snapshot_interval"))

    @property
    def top_n(self) -> int:
        return LEVEL_TOP_N[self.level]

    @property
    def warning_bytes(self) -> int:
        return int(self.memory_warning_threshold_mb * 1024 * 1024)

    @property
    def critical_bytes(self) -> int:
        return int(self.memory_critical_threshold_mb * 1024 * 1024)

    def replace(self, **changes: Any) -> Config:
        return replace(self, **changes)


_FALLBACKS: dict[str, Any] = {"trace_depth": 8, "snapshot_interval": 300.0}


class ConfigValueError(ConfigError):
    """An invalid value for one field; ``field`` names it (for "set in FILE")."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _fail(name: str, value: Any, accepted: str) -> None:
    raise ConfigValueError(f"invalid config {name}={value!r}: accepted values are {accepted}", name)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# field -> (lowest, highest, lowest allowed itself?, accepted values as told to users)
_NUMBER_RANGES: dict[str, tuple[float, float, bool, str]] = {
    # below 10 ms the sampler is a busy loop; above a day it never samples
    "sampling_interval": (0.01, 86400.0, True, "a number of seconds from 0.01 to 86400"),
    "snapshot_interval": (0.01, 86400.0 * 7, True, "a number of seconds from 0.01 to 604800"),
    "memory_warning_threshold_mb": (0, math.inf, False, "a number above 0"),
    "memory_critical_threshold_mb": (0, math.inf, False, "a number above 0"),
    "memory_growth_rate_threshold_mb_per_min": (0, math.inf, False, "a number above 0"),
    "smaps_interval": (0, math.inf, False, "a number above 0"),
    "smaps_max_rss_mb": (0, math.inf, False, "a number above 0"),
    "history_flush_interval": (0, math.inf, False, "a number above 0"),
    "raw_history_seconds": (0, math.inf, False, "a number above 0"),
    "leak_window_seconds": (0, math.inf, False, "a number above 0"),
    "leak_check_interval": (0, math.inf, False, "a number above 0"),
    "leak_warmup_seconds": (0, math.inf, True, "a number of seconds, 0 or more"),
    "threshold_hysteresis": (0, 0.5, True, "a fraction from 0 up to (not including) 0.5"),
    "sampler_budget": (0, 0.5, False, "a fraction of CPU time above 0, at most 0.5"),
}

# field -> (lowest, highest) for whole numbers
_INT_RANGES: dict[str, tuple[int, int]] = {
    "event_queue_size": (1, 1_000_000),
    "trace_depth": (1, 256),
    "http_port": (0, 65535),
}


def _validate(cfg: Config) -> None:
    if cfg.mode not in MODES:
        _fail("mode", cfg.mode, ", ".join(MODES))
    if cfg.level not in LEVELS:
        _fail("level", cfg.level, ", ".join(LEVELS))
    for name, (low, high, low_ok, accepted) in _NUMBER_RANGES.items():
        value = getattr(cfg, name)
        if value is None and name in ("sampling_interval", "snapshot_interval"):
            continue  # the mode's preset
        if not _is_number(value):
            _fail(name, value, accepted)
        above_low = value >= low if low_ok else value > low
        # threshold_hysteresis excludes its top; the others include it
        below_high = value < high if name == "threshold_hysteresis" else value <= high
        if not (above_low and below_high):
            _fail(name, value, accepted)
    for name, (low, high) in _INT_RANGES.items():
        value = getattr(cfg, name)
        if value is None and name == "trace_depth":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            _fail(name, value, f"a whole number from {low} to {high}")
    if cfg.memory_critical_threshold_mb < cfg.memory_warning_threshold_mb:
        _fail(
            "memory_critical_threshold_mb",
            cfg.memory_critical_threshold_mb,
            f"a number at or above memory_warning_threshold_mb ({cfg.memory_warning_threshold_mb})",
        )
    if cfg.enabled_backends is not None:
        if isinstance(cfg.enabled_backends, (str, bytes)) or not isinstance(
            cfg.enabled_backends, (tuple, list)
        ):
            _fail("enabled_backends", cfg.enabled_backends, ", ".join(BACKENDS))
        for backend in cfg.enabled_backends:
            if backend not in BACKENDS:
                _fail("enabled_backends", backend, ", ".join(BACKENDS))
    if not isinstance(cfg.components, Mapping):
        _fail("components", cfg.components, "a table of name = 'module.prefix'")
    for name, prefix in cfg.components.items():
        if not (isinstance(name, str) and name.strip() and isinstance(prefix, str)):
            _fail("components", {name: prefix}, "a table of name = 'module.prefix'")
        if not prefix.strip():
            _fail("components", {name: prefix}, "a table of name = 'module.prefix'")
    if not isinstance(cfg.context_thresholds, Mapping):
        _fail("context_thresholds", cfg.context_thresholds, "a table of threshold = fraction")
    for name, value in cfg.context_thresholds.items():
        if name not in CONTEXT_THRESHOLDS or not _is_number(value) or not 0 <= value <= 1:
            _fail(
                "context_thresholds",
                {name: value},
                "fractions from 0 to 1 for " + ", ".join(CONTEXT_THRESHOLDS),
            )
    for name in ("service_name", "db_path", "http_token"):
        value = getattr(cfg, name)
        if value is not None and not isinstance(value, str):
            _fail(name, value, "text")
    if not isinstance(cfg.http_host, str) or not cfg.http_host:
        _fail("http_host", cfg.http_host, "a host name or address")
    for name in (
        "enable_leak_detection",
        "enable_component_tracking",
        "enable_gc_monitoring",
        "http_enabled",
        "persist_history",
        "enable_recovery",
    ):
        if not isinstance(getattr(cfg, name), bool):
            _fail(name, getattr(cfg, name), "true or false")


# -- loading -----------------------------------------------------------------------
_FIELD_TYPES = {name: Config.__annotations__[name] for name in fields(Config)}


#: ``MEMLENS_*`` environment variables that are not config fields but are read elsewhere.
OTHER_ENV_VARS = frozenset(
    {
        "MEMLENS_DB",
        "MEMLENS_DIR",
        "MEMLENS_MONITOR",
        "MEMLENS_MONITOR_PARENT",
        "MEMLENS_CACHE_DIR",
        "MEMLENS_CONTEXT_MODELS",
        "MEMLENS_TIKTOKEN_DIR",
        "MEMLENS_TOKEN_THREADS",
        "MEMLENS_RUN_HOSTED",
        "MEMLENS_RUN_REEXEC",
        "MEMLENS_NO_EXTENSIONS",
        "MEMLENS_ATTACH_ARGS",
        # the test suite's switches (scripts/test.sh): a missing browser or
        # redis-server fails instead of skipping
        "MEMLENS_REQUIRE_BROWSER",
        "MEMLENS_REQUIRE_REDIS",
    }
)

_warned_env: set[str] = set()


def _coerce(name: str, value: Any, source: str = "") -> Any:
    """Turn a TOML or environment value into the field's type, or fail clearly."""
    kind = str(_FIELD_TYPES[name])
    where = f" in {source}" if source else ""
    try:
        if "bool" in kind:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if "tuple" in kind:
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ValueError
            return tuple(value)
        if "Mapping" in kind:
            if isinstance(value, str):
                pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
                if any(len(pair) != 2 for pair in pairs):
                    raise ValueError
                table: dict[str, Any] = {k.strip(): v.strip() for k, v in pairs}
            elif isinstance(value, Mapping):
                table = dict(value)
            else:
                raise ValueError
            if "float" in kind:
                return {k: float(v) for k, v in table.items()}
            return table
        if "int" in kind and "float" not in kind:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError  # 8.7 is not a depth; int() would quietly make it 8
                return int(value)
            if isinstance(value, str):
                return int(value.strip())
            if not isinstance(value, int):
                raise ValueError
            return value
        if "float" in kind:
            if name.endswith("interval") and isinstance(value, str):
                return parse_duration(value)
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            return float(value)
        if isinstance(value, (dict, list, tuple, bool)):
            raise ValueError
        return str(value)
    except ConfigError as exc:
        raise ConfigValueError(f"{exc}{where}", name) from None
    except (TypeError, ValueError, OverflowError):
        raise ConfigValueError(
            f"invalid config {name}={value!r}{where}: expected {_KIND_WORDS.get(kind, kind)}",
            name,
        ) from None


_KIND_WORDS = {
    "bool": "true or false",
    "int": "a whole number",
    "int | None": "a whole number",
    "float": "a number",
    "float | None": "a number",
    "tuple[str, ...] | None": "a list of names",
    "Mapping[str, str]": "a table of name = 'module.prefix'",
    "Mapping[str, float]": "a table of threshold = fraction",
    "str | None": "text",
    "str": "text",
}


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read {path}: not UTF-8 text") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _table(data: Any, keys: tuple[str, ...], path: Path) -> Mapping[str, Any]:
    """The table at ``keys`` inside ``data`` ({} if absent), or a clear error."""
    table: Any = data
    for depth, key in enumerate(keys):
        if not isinstance(table, Mapping):
            dotted = ".".join(keys[:depth])
            raise ConfigError(f"cannot read {path}: [{dotted}] must be a table")
        table = table.get(key, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"cannot read {path}: [{'.'.join(keys)}] must be a table")
    return table


def _from_table(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = str(key).replace("-", "_")
        if name not in _FIELD_TYPES:
            raise ConfigError(
                f"unknown config field {key!r} in {source}: known fields are "
                + ", ".join(sorted(_FIELD_TYPES))
            )
        out[name] = _coerce(name, value, source)
    return out


def _warn_unknown_env(env: Mapping[str, str]) -> None:
    """Log once per name for a ``MEMLENS_*`` variable nothing reads (a typo, usually)."""
    known = {"MEMLENS_" + name.upper() for name in _FIELD_TYPES} | OTHER_ENV_VARS
    for key in env:
        if not key.startswith("MEMLENS_") or key in known or key in _warned_env:
            continue
        _warned_env.add(key)
        # Imported here: only a misspelt variable needs them (the monitor's footprint).
        import difflib
        import logging

        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        logging.getLogger("memlens.config").warning(
            "memlens: unknown environment variable %s ignored%s", key, hint
        )


def load_config(
    directory: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Build the effective :class:`Config` (see the module docstring for the order).

    Every source goes through the same checks; an invalid value names the file or
    environment variable it came from.
    """
    base = Path(directory) if directory is not None else Path.cwd()
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}

    def merge(found: dict[str, Any], source: str) -> None:
        values.update(found)
        origin.update(dict.fromkeys(found, source))

    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        table = _table(_read_toml(pyproject), ("tool", "memlens"), pyproject)
        merge(_from_table(table, str(pyproject)), str(pyproject))
    own = base / "memlens.toml"
    if own.is_file():
        data = _read_toml(own)
        table = _table(data, ("memlens",), own) if "memlens" in data else data
        merge(_from_table(table, str(own)), str(own))
    _warn_unknown_env(env)
    for name in _FIELD_TYPES:
        key = "MEMLENS_" + name.upper()
        if key in env:
            merge({name: _coerce(name, env[key], key)}, key)
    if "MEMLENS_DB" in env and "db_path" not in overrides:
        merge({"db_path": env["MEMLENS_DB"]}, "MEMLENS_DB")
    for name, value in overrides.items():
        if name not in _FIELD_TYPES:
            raise ConfigError(
                f"unknown config field {name!r}: known fields are "
                + ", ".join(sorted(_FIELD_TYPES))
            )
        values[name] = value
        origin.pop(name, None)
    try:
        return Config(**values)
    except ConfigValueError as exc:
        source = origin.get(exc.field)
        if source and source not in str(exc):
            raise ConfigValueError(f"{exc} (set in {source})", exc.field) from None
        raise
