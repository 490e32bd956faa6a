"""Batch counting on threads, the on-disk rank cache and the encoding load time."""

from __future__ import annotations

import base64
import gzip
import random
from pathlib import Path

import pytest

from memlens.context import ContextProfiler, profile_file
from memlens.context import tokens as tokens_module
from memlens.context.tokens import CachedCounter, load_encoding, parse_ranks
from memlens.report.context_text import render_to_string

from .conftest import CLAUDE_CODE


def _texts(n: int = 300) -> list[str]:
    rng = random.Random(7)
    words = ["refund", "def", "return", "  ", "\n", "ÄÖü", "日本語", "🙂", "x+1", "<|endoftext|>"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(0, 400))) for _ in range(n)]


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base", "approximate"])
def test_batch_and_one_by_one_counts_agree(encoding: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # force the threaded path even on a one-core machine and for small batches
    monkeypatch.setattr(tokens_module, "WORKERS", 3)
    monkeypatch.setattr(tokens_module, "PARALLEL_MIN_CHARS", 0)
    texts = _texts()
    one = CachedCounter(encoding)
    expected = [one.count(t) for t in texts]
    batch = CachedCounter(encoding)
    assert batch.tokenize_batch(texts) == expected
    assert batch.prime(texts + texts) == len({t for t in texts if t})
    assert [batch.count(t) for t in texts] == expected
    assert CachedCounter(encoding).count_many(texts) == expected
    if encoding != "approximate":
        raw = load_encoding(encoding)
        assert expected == [len(raw.encode_ordinary(t)) for t in texts]


def test_profile_counts_do_not_depend_on_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CachedCounter("cl100k_base")
    monkeypatch.setattr(tokens_module, "WORKERS", 1)
    single = ContextProfiler(CLAUDE_CODE, counter=counter).update()
    counter.clear()
    monkeypatch.setattr(tokens_module, "WORKERS", 4)
    monkeypatch.setattr(tokens_module, "PARALLEL_MIN_CHARS", 0)
    threaded = ContextProfiler(CLAUDE_CODE, counter=counter).update()
    assert [(i.id, i.tokens) for i in single.items] == [(i.id, i.tokens) for i in threaded.items]
    # the reader's batch covered the texts: nothing was left to count one by one
    assert counter.hits >= counter.misses > 0


def test_parse_ranks_matches_base64_reference() -> None:
    tokens = [b"a", b" the", b"\xff\x00", bytes(range(200, 256))]
    raw = b"".join(base64.b64encode(t) + b" %d\n" % i for i, t in enumerate(tokens))
    assert parse_ranks(raw) == {t: i for i, t in enumerate(tokens)}
    with pytest.raises(ValueError):
        parse_ranks(b"YQ== 0\nYg==\n")


def test_rank_cache_is_used_checked_and_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "tiny.tiktoken.gz"
    ranks = {bytes([i]): i for i in range(256)}
    source.write_bytes(
        gzip.compress(b"".join(base64.b64encode(t) + b" %d\n" % r for t, r in ranks.items()))
    )
    monkeypatch.setenv("MEMLENS_CACHE_DIR", str(tmp_path / "cache"))
    assert tokens_module._read_ranks(source) == ranks
    (cached,) = (tmp_path / "cache" / "tiktoken").glob("tiny-*.marshal")

    def no_parsing(raw: bytes) -> dict[bytes, int]:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(tokens_module, "parse_ranks", no_parsing)
    assert tokens_module._read_ranks(source) == ranks
    # a corrupt cache is ignored and rewritten, never trusted
    blob = bytearray(cached.read_bytes())
    blob[-3] ^= 0xFF
    cached.write_bytes(bytes(blob))
    monkeypatch.setattr(tokens_module, "parse_ranks", parse_ranks)
    assert tokens_module._read_ranks(source) == ranks
    assert tokens_module._load_cached_ranks(cached) == ranks
    # an empty MEMLENS_CACHE_DIR disables the cache
    monkeypatch.setenv("MEMLENS_CACHE_DIR", "")
    assert tokens_module.rank_cache_dir() is None


def test_encoding_load_is_reported_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    if load_encoding("cl100k_base") is None:
        pytest.skip("tiktoken or its BPE files unavailable")
    # a process that has not loaded the encoding yet
    monkeypatch.setattr(tokens_module, "_encodings", {})
    monkeypatch.setattr(tokens_module, "_counters", {})
    first = profile_file(CLAUDE_CODE)
    assert first.encoding_load_seconds > 0
    assert first.to_dict()["encoding_load_ms"] > 0
    assert "loading the encoding" in render_to_string(first)
    again = profile_file(CLAUDE_CODE)
    assert again.encoding_load_seconds == 0
    assert "loading the encoding" not in render_to_string(again)
