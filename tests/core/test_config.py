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
