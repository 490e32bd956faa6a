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

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from memlens.core.errors import ConfigError
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

# level -> how many allocation sites/components reports keep.
LEVEL_TOP_N = {"low": 5, "medium": 10, "high": 25, "detailed": 100}


@dataclass(frozen=True)
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
        return dataclasses.replace(self, **changes)


_FALLBACKS: dict[str, Any] = {"trace_depth": 8, "snapshot_interval": 300.0}


def _fail(name: str, value: Any, accepted: str) -> None:
    raise ConfigError(f"invalid config {name}={value!r}: accepted values are {accepted}")


def _validate(cfg: Config) -> None:
    if cfg.mode not in MODES:
        _fail("mode", cfg.mode, ", ".join(MODES))
    if cfg.level not in LEVELS:
        _fail("level", cfg.level, ", ".join(LEVELS))
    for name in ("sampling_interval", "snapshot_interval"):
        value = getattr(cfg, name)
        if value is not None and not (isinstance(value, (int, float)) and value > 0):
            _fail(name, value, "a number of seconds above 0")
    for name in (
        "memory_warning_threshold_mb",
        "memory_critical_threshold_mb",
        "memory_growth_rate_threshold_mb_per_min",
        "smaps_interval",
        "smaps_max_rss_mb",
        "history_flush_interval",
        "raw_history_seconds",
        "leak_window_seconds",
        "leak_check_interval",
    ):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            _fail(name, value, "a number above 0")
    if (
        isinstance(cfg.leak_warmup_seconds, bool)
        or not isinstance(cfg.leak_warmup_seconds, (int, float))
        or cfg.leak_warmup_seconds < 0
    ):
        _fail("leak_warmup_seconds", cfg.leak_warmup_seconds, "a number of seconds, 0 or more")
    if (
        isinstance(cfg.threshold_hysteresis, bool)
        or not isinstance(cfg.threshold_hysteresis, (int, float))
        or not 0 <= cfg.threshold_hysteresis < 0.5
    ):
        _fail(
            "threshold_hysteresis",
            cfg.threshold_hysteresis,
            "a fraction from 0 up to (not including) 0.5",
        )
    if (
        isinstance(cfg.event_queue_size, bool)
        or not isinstance(cfg.event_queue_size, int)
        or not 1 <= cfg.event_queue_size <= 1_000_000
    ):
        _fail("event_queue_size", cfg.event_queue_size, "a whole number from 1 to 1000000")
    if cfg.memory_critical_threshold_mb < cfg.memory_warning_threshold_mb:
        _fail(
            "memory_critical_threshold_mb",
            cfg.memory_critical_threshold_mb,
            f"a number at or above memory_warning_threshold_mb ({cfg.memory_warning_threshold_mb})",
        )
    if cfg.enabled_backends is not None:
        for backend in cfg.enabled_backends:
            if backend not in BACKENDS:
                _fail("enabled_backends", backend, ", ".join(BACKENDS))
    if cfg.trace_depth is not None and (
        isinstance(cfg.trace_depth, bool)
        or not isinstance(cfg.trace_depth, int)
        or not 1 <= cfg.trace_depth <= 256
    ):
        _fail("trace_depth", cfg.trace_depth, "a whole number from 1 to 256")
    if (
        isinstance(cfg.http_port, bool)
        or not isinstance(cfg.http_port, int)
        or not 0 <= cfg.http_port <= 65535
    ):
        _fail("http_port", cfg.http_port, "a port number from 0 to 65535")
    if not isinstance(cfg.components, Mapping):
        _fail("components", cfg.components, "a table of name = 'module.prefix'")


# -- loading -----------------------------------------------------------------------
_FIELD_TYPES = {f.name: f.type for f in fields(Config)}


def _coerce(name: str, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or fail clearly."""
    kind = str(_FIELD_TYPES[name])
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
            return tuple(value)
        if "Mapping" in kind:
            if isinstance(value, str):
                pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
                return {k.strip(): v.strip() for k, v in pairs}
            return dict(value)
        if "int" in kind and "float" not in kind:
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if "float" in kind:
            if name.endswith("interval") and isinstance(value, str):
                return parse_duration(value)
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        return str(value)
    except ConfigError:
        raise
    except (TypeError, ValueError):
        raise ConfigError(f"invalid config {name}={value!r}: expected {kind}") from None


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def _from_table(table: Mapping[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in _FIELD_TYPES:
            raise ConfigError(
                f"unknown config field {key!r} in {source}: known fields are "
                + ", ".join(sorted(_FIELD_TYPES))
            )
        out[name] = _coerce(name, value)
    return out


def load_config(
    directory: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Build the effective :class:`Config` (see the module docstring for the order)."""
    base = Path(directory) if directory is not None else Path.cwd()
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        table = _read_toml(pyproject).get("tool", {}).get("memlens", {})
        values.update(_from_table(table, str(pyproject)))
    own = base / "memlens.toml"
    if own.is_file():
        data = _read_toml(own)
        table = data.get("memlens", data)
        values.update(_from_table(table, str(own)))
    for name in _FIELD_TYPES:
        key = "MEMLENS_" + name.upper()
        if key in env:
            values[name] = _coerce(name, env[key])
    if "MEMLENS_DB" in env and "db_path" not in overrides:
        values["db_path"] = env["MEMLENS_DB"]
    for name, value in overrides.items():
        if name not in _FIELD_TYPES:
            raise ConfigError(
                f"unknown config field {name!r}: known fields are "
                + ", ".join(sorted(_FIELD_TYPES))
            )
        values[name] = value
    return Config(**values)
