"""Token counting (exact, cached, approximate), images and the model table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memlens.context import find_model, get_counter, get_model, register_model
from memlens.context import models as models_module
from memlens.context.images import (
    anthropic_image_tokens,
    image_size,
    openai_image_tokens,
    size_from_base64,
)
from memlens.context.tokens import CachedCounter, approximate_tokens, load_encoding
from memlens.core.errors import ConfigError

from .fixtures.make_fixtures import png

TEXT = "The quick brown fox jumps over the lazy dog. def f(x):\n    return x * 2\n"


def test_exact_counts_match_tiktoken() -> None:
    tiktoken = pytest.importorskip("tiktoken")
    encoding = load_encoding("cl100k_base")
    assert isinstance(encoding, tiktoken.Encoding)
    counter = CachedCounter("cl100k_base")
    assert not counter.approximate
    assert counter.count(TEXT) == len(encoding.encode_ordinary(TEXT))
    # special-token text is counted as text, never rejected
    assert counter.count("<|endoftext|>") > 1
    o200k = CachedCounter("o200k_base")
    assert o200k.name == "o200k_base"


def test_cache_by_content_hash() -> None:
    counter = CachedCounter("cl100k_base")
    first = counter.count(TEXT)
    assert (counter.hits, counter.misses) == (0, 1)
    assert counter.count(TEXT) == first
    assert (counter.hits, counter.misses) == (1, 1)
    many = counter.count_many([TEXT, "another text", "yet another"])
    assert many[0] == first and counter.misses == 3
    assert get_counter("cl100k_base") is get_counter("cl100k_base")


def test_cache_is_bounded() -> None:
    counter = CachedCounter("cl100k_base", max_entries=10)
    for i in range(25):
        counter.count(f"text number {i}")
    assert len(counter) <= 10


def test_approximate_estimator_is_labelled_and_close() -> None:
    counter = CachedCounter("approximate")
    assert counter.approximate and counter.name == "approximate"
    assert approximate_tokens("") == 0 and approximate_tokens("abcd") == 1
    exact = CachedCounter("cl100k_base").count(TEXT * 20)
    assert abs(counter.count(TEXT * 20) - exact) / exact < 0.35


def test_missing_encoding_falls_back_to_approximate() -> None:
    counter = CachedCounter("no_such_encoding")
    assert counter.approximate and counter.count("hello world!") == 3


def test_image_sizes_and_costs() -> None:
    import base64

    data = base64.b64decode(png(800, 600))
    assert image_size(data) == (800, 600)
    assert size_from_base64(png(1200, 900)) == (1200, 900)
    assert image_size(b"GIF89a" + (320).to_bytes(2, "little") + (200).to_bytes(2, "little")) == (
        320,
        200,
    )
    assert image_size(b"not an image") is None
    assert anthropic_image_tokens((800, 600)) == 640
    assert anthropic_image_tokens((4000, 3000)) <= 1600
    assert anthropic_image_tokens(None) == 1600
    assert openai_image_tokens((1024, 1024), "high") == 765
    assert openai_image_tokens((1024, 1024), "low") == 85
    assert openai_image_tokens((2048, 4096), "high") == 1105


def test_model_table_prefix_lookup() -> None:
    assert get_model("claude-sonnet-4-5-20250929").context_window == 200_000
    assert find_model("gpt-4o-mini-2024-07-18").name == "gpt-4o"
    assert find_model("gpt-4-0613").name == "gpt-4"
    assert find_model("gpt-4.1-nano").context_window == 1_047_576
    assert find_model("openai/gpt-4o").name == "gpt-4o"
    assert find_model("llama-3") is None
    with pytest.raises(ConfigError, match="unknown model 'llama-3'"):
        get_model("llama-3")


def test_user_can_extend_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register_model("my-local-model", 32_768, family="local")
    assert get_model("my-local-model-q4").context_window == 32_768
    extra = tmp_path / "models.json"
    extra.write_text(json.dumps({"models": [{"name": "acme-1", "context_window": 50000}]}))
    monkeypatch.setenv("MEMLENS_CONTEXT_MODELS", str(extra))
    models_module._reset_for_tests()
    try:
        assert get_model("acme-1").context_window == 50_000
    finally:
        monkeypatch.delenv("MEMLENS_CONTEXT_MODELS")
        models_module._reset_for_tests()
    with pytest.raises(ConfigError, match="context_window"):
        register_model("bad", 0)
    bad = tmp_path / "bad.json"
    bad.write_text('{"models": [{"name": "x"}]}')
    with pytest.raises(ConfigError, match="invalid model entry"):
        models_module.load_models_file(bad)
