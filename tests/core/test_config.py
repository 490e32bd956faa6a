import pytest

from memlens.core.config import MODES, Config, load_config
from memlens.core.errors import ConfigError


def test_defaults_and_mode_presets():
    cfg = load_config(env={})
    assert cfg.mode == "standard"
    assert cfg.effective_interval == 1.0
    prod = Config(mode="production")
    assert prod.effective_backends == ("system", "gc")
    assert "tracemalloc" not in prod.effective_backends
    debug = Config(mode="debug")
    assert "tracemalloc" in debug.effective_backends
    assert debug.effective_trace_depth > Config(mode="advanced").effective_trace_depth
    assert Config(mode="off").effective_backends == ()


def test_explicit_value_beats_preset():
    assert Config(mode="debug", sampling_interval=3.0).effective_interval == 3.0
    assert Config(mode="production", enable_gc_monitoring=False).effective_backends == ("system",)


def test_source_order(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.memlens]\nmode = "advanced"\nlevel = "high"\nsampling_interval = 2.0\n'
    )
    (tmp_path / "memlens.toml").write_text('level = "detailed"\nmemory_warning_threshold_mb = 10\n')
    env = {"MEMLENS_SAMPLING_INTERVAL": "250ms", "MEMLENS_MEMORY_CRITICAL_THRESHOLD_MB": "20"}
    cfg = load_config(tmp_path, env=env, memory_critical_threshold_mb=30.0)
    assert cfg.mode == "advanced"  # pyproject
    assert cfg.level == "detailed"  # memlens.toml beats pyproject
    assert cfg.sampling_interval == 0.25  # env beats files
    assert cfg.memory_warning_threshold_mb == 10
    assert cfg.memory_critical_threshold_mb == 30.0  # keyword beats env


def test_memlens_table_in_memlens_toml(tmp_path):
    (tmp_path / "memlens.toml").write_text(
        '[memlens]\nmode = "production"\n[memlens.components]\nengine = "app.engine"\n'
    )
    cfg = load_config(tmp_path, env={})
    assert cfg.mode == "production"
    assert cfg.components == {"engine": "app.engine"}


def test_env_types():
    env = {
        "MEMLENS_ENABLE_LEAK_DETECTION": "no",
        "MEMLENS_ENABLED_BACKENDS": "system, gc",
        "MEMLENS_HTTP_PORT": "9100",
        "MEMLENS_COMPONENTS": "engine=app.engine,db=app.db",
        "MEMLENS_DB": "/tmp/x.db",
    }
    cfg = load_config(env=env)
    assert cfg.enable_leak_detection is False
    assert cfg.enabled_backends == ("system", "gc")
    assert cfg.http_port == 9100
    assert cfg.components == {"engine": "app.engine", "db": "app.db"}
    assert cfg.db_path == "/tmp/x.db"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "turbo"}, "mode"),
        ({"level": "max"}, "level"),
        ({"sampling_interval": 0}, "sampling_interval"),
        ({"memory_warning_threshold_mb": -1}, "memory_warning_threshold_mb"),
        (
            {"memory_warning_threshold_mb": 100, "memory_critical_threshold_mb": 50},
            "memory_critical_threshold_mb",
        ),
        ({"enabled_backends": ("system", "magic")}, "enabled_backends"),
        ({"trace_depth": 0}, "trace_depth"),
        ({"http_port": 70000}, "http_port"),
    ],
)
def test_invalid_values_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as info:
        load_config(env={}, **kwargs)
    assert field in str(info.value)
    assert "accepted" in str(info.value)


def test_invalid_env_and_unknown_fields(tmp_path):
    with pytest.raises(ConfigError, match="enable_gc_monitoring"):
        load_config(env={"MEMLENS_ENABLE_GC_MONITORING": "maybe"})
    with pytest.raises(ConfigError, match="unknown config field 'colour'"):
        load_config(env={}, colour="red")
    (tmp_path / "memlens.toml").write_text("sampling = 1\n")
    with pytest.raises(ConfigError, match="unknown config field 'sampling'"):
        load_config(tmp_path, env={})
    (tmp_path / "memlens.toml").write_text("this is [not toml\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path, env={})


def test_every_mode_is_valid():
    for mode in MODES:
        cfg = Config(mode=mode)
        assert cfg.effective_interval > 0


# -- hardening (issue #14): one validation path for every source ---------------------
@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("sampling_interval = 1e-300", "sampling_interval"),
        ("sampling_interval = inf", "sampling_interval"),
        ("sampling_interval = nan", "sampling_interval"),
        ("trace_depth = 8.7", "trace_depth"),
        ("event_queue_size = 1.5", "event_queue_size"),
        ("leak_warmup_seconds = nan", "leak_warmup_seconds"),
        ('enabled_backends = "system"', ""),  # a string is a one-item list: accepted
        ("enabled_backends = [1]", "enabled_backends"),
        ("components = 5", "components"),
        ('components = {"" = "x"}', "components"),
        ("persist_history = 3", "persist_history"),
        ('service_name = ["a"]', "service_name"),
    ],
)
def test_file_values_are_validated_and_name_the_file(tmp_path, toml, field):
    (tmp_path / "memlens.toml").write_text(toml + "\n")
    if not field:
        load_config(tmp_path, env={})
        return
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert field in str(info.value)
    assert "memlens.toml" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"sampling_interval": 1e-300}, "sampling_interval"),
        ({"sampling_interval": float("inf")}, "sampling_interval"),
        ({"trace_depth": 8.7}, "trace_depth"),
        ({"event_queue_size": 1.5}, "event_queue_size"),
        ({"leak_warmup_seconds": float("nan")}, "leak_warmup_seconds"),
        ({"components": {"": "x"}}, "components"),
    ],
)
def test_the_api_path_applies_the_same_checks(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        Config(**kwargs)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"MEMLENS_COMPONENTS": "=x"}, "MEMLENS_COMPONENTS"),
        ({"MEMLENS_COMPONENTS": "x"}, "MEMLENS_COMPONENTS"),
        ({"MEMLENS_TRACE_DEPTH": "8.7"}, "MEMLENS_TRACE_DEPTH"),
        ({"MEMLENS_SAMPLING_INTERVAL": "1e-300"}, "MEMLENS_SAMPLING_INTERVAL"),
        ({"MEMLENS_SAMPLING_INTERVAL": "1ms"}, "MEMLENS_SAMPLING_INTERVAL"),
    ],
)
def test_env_values_name_the_variable(env, field):
    with pytest.raises(ConfigError, match=field):
        load_config(env=env)


@pytest.mark.parametrize(
    "body",
    [b"[tool]\nmemlens = 5\n", b'tool = "x"\n', b"[tool.memlens]\nmode = \xff\n", b"\xff\xfe[x]"],
)
def test_malformed_pyproject_is_one_clear_error(tmp_path, body):
    (tmp_path / "pyproject.toml").write_bytes(body)
    with pytest.raises(ConfigError, match="pyproject.toml"):
        load_config(tmp_path, env={})


def test_malformed_memlens_toml_is_one_clear_error(tmp_path):
    (tmp_path / "memlens.toml").write_text("memlens = 5\n")
    with pytest.raises(ConfigError, match="memlens.toml"):
        load_config(tmp_path, env={})


def test_unknown_env_variable_is_reported_once(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="memlens.config"):
        cfg = load_config(env={"MEMLENS_MODEE": "production"})
        load_config(env={"MEMLENS_MODEE": "production"})
    assert cfg.mode == "standard"
    messages = [r.getMessage() for r in caplog.records if "MEMLENS_MODEE" in r.getMessage()]
    assert len(messages) == 1, messages
    assert "did you mean MEMLENS_MODE" in messages[0]


def test_config_loader_fuzz_wrong_types_and_unknown_keys(tmp_path):
    """Every field given every kind of wrong value from a file, the environment and the
    API: a ConfigError naming the field, or a valid Config; never another exception."""
    import random
    from dataclasses import fields

    from memlens.core.config import Config as Cfg

    wrong = [
        "5",
        "-1",
        "1e-300",
        "1e999",
        "nan",
        "inf",
        "8.7",
        "true",
        '"x"',
        '""',
        "[]",
        "[1, 2]",
        '["a"]',
        "{}",
        "{a = 1}",
        '{"" = "x"}',
        "2025-01-01",
    ]
    rng = random.Random(14)
    names = [f.name for f in fields(Cfg)] + ["colour", "sampling", "Mode"]
    tried = valid = refused = 0
    for name in names:
        for value in wrong:
            for where in ("memlens.toml", "pyproject.toml", "env"):
                tried += 1
                for old in ("memlens.toml", "pyproject.toml"):
                    (tmp_path / old).unlink(missing_ok=True)
                env: dict[str, str] = {}
                if where == "env":
                    env = {"MEMLENS_" + name.upper(): value.strip('"')}
                elif where == "pyproject.toml":
                    (tmp_path / where).write_text(f"[tool.memlens]\n{name} = {value}\n")
                else:
                    (tmp_path / where).write_text(f"{name} = {value}\n")
                try:
                    load_config(tmp_path, env=env)
                    valid += 1
                except ConfigError:
                    refused += 1
    for _ in range(300):
        tried += 1
        kwargs = {rng.choice(names[:-3]): rng.choice([None, 1.5, -3, "x", [], {}, (), True])}
        try:
            Cfg(**kwargs)
            valid += 1
        except ConfigError:
            refused += 1
    print(f"\nconfig fuzz: {tried} tried, {valid} valid, {refused} refused, 0 crashed")
    assert valid + refused == tried


def test_every_memlens_variable_the_code_reads_is_known() -> None:
    """A variable memlens itself reads (or scripts/test.sh sets) is never called a typo."""
    import re
    from pathlib import Path

    from memlens.core.config import _FIELD_TYPES, OTHER_ENV_VARS

    root = Path(__file__).resolve().parents[2]
    known = {"MEMLENS_" + name.upper() for name in _FIELD_TYPES} | OTHER_ENV_VARS
    texts = [p.read_text() for p in (root / "src" / "memlens").rglob("*.py")]
    texts.append((root / "scripts" / "test.sh").read_text())
    used = set()
    for text in texts:
        used |= set(
            re.findall(r"(?:environ\.get\(|environ\[|getenv\(|export )\"?(MEMLENS_[A-Z_]+)", text)
        )
        used |= set(re.findall(r"_ENV = \"(MEMLENS_[A-Z_]+)\"", text))
    assert used, "the scan found no variables"
    assert used - known == set()
