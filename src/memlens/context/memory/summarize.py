"""Summarizers: texts + a token target -> a summary and the exact strings it kept.

:class:`Summarizer` is the protocol. The default, :class:`ExtractiveSummarizer`, runs
offline and deterministically: it copies the keep-set (see :mod:`.keepset`) first,
then the best-ranked sentences of the originals until the target is reached, and
never exceeds the target (it counts its own output with the caller's exact counter).
Tool output is trimmed instead (:func:`trim_output`): head and tail kept, the middle
replaced by an elision marker that still lists its error lines and paths.

The ranking is a small centroid score (sum of log term frequencies, normalised by
sentence length, plus bonuses for keep-set strings and first sentences). sumy and
summa were considered; they rank well but cost far more than the 50 ms per 100k
tokens this path is held to, and neither lets the caller pin exact strings.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from memlens.context.memory.keepset import WEIGHT, Keep, extract, extract_shared, occurring
from memlens.context.tokens import CachedCounter, count_cut, digest_text

Count = Callable[[str], int]

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "that",
        "this",
        "with",
        "from",
        "have",
        "are",
        "was",
        "were",
        "you",
        "your",
        "not",
        "but",
        "can",
        "will",
        "all",
        "any",
        "its",
        "into",
        "then",
        "than",
        "there",
        "their",
        "them",
        "they",
        "what",
        "when",
        "which",
        "who",
        "how",
        "our",
        "has",
        "had",
        "been",
        "also",
        "just",
        "only",
        "more",
        "some",
        "such",
        "use",
        "used",
        "using",
    ]
)

ELISION = "[… {lines} lines elided by memlens …]"


@dataclass
class Summary:
    """What a summarizer returns: the text, the keep-set strings it carries, notes."""

    text: str
    kept: list[Keep] = field(default_factory=list)
    dropped: list[Keep] = field(default_factory=list)
    method: str = "extractive"
    notes: list[str] = field(default_factory=list)


@runtime_checkable
class Summarizer(Protocol):
    """Turns ``texts`` into one summary of at most ``target_tokens`` tokens.

    ``count`` is the caller's exact token counter; ``tool_output`` says the texts are
    tool results (trimmed, not ranked as prose); ``tokens`` is the texts' total when
    the caller knows it already (saves counting them again).
    """

    name: str

    def summarize(
        self,
        texts: Sequence[str],
        target_tokens: int,
        *,
        count: Count,
        tool_output: bool | Sequence[bool] = False,
        tokens: int | None = None,
    ) -> Summary: ...


def _cut(text: str, count: Count, target: int) -> str:
    """The longest prefix of ``text`` (at a space) within ``target`` tokens."""
    if count(text) <= target:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if count(text[:mid]) <= target:
            low = mid
        else:
            high = mid - 1
    cut = text.rfind(" ", 0, low)
    return text[: cut if cut > low // 2 else low]


def _render_keeps(keeps: list[Keep], present: str) -> str:
    found = occurring((k.text for k in keeps), present)
    extra = [k.text for k in keeps if k.text not in found]
    return ("kept: " + " | ".join(extra)) if extra else ""


class ExtractiveSummarizer:
    """Offline, deterministic extractive summaries that always carry the keep-set."""

    name = "extractive"

    def summarize(
        self,
        texts: Sequence[str],
        target_tokens: int,
        *,
        count: Count,
        tool_output: bool | Sequence[bool] = False,
        tokens: int | None = None,
    ) -> Summary:
        flags = output_flags(texts, tool_output)
        joined = "\n".join(texts)
        if target_tokens <= 0:
            return Summary("", [], keep_set(texts, flags))
        total = count(joined) if tokens is None else tokens
        if total <= target_tokens:
            return Summary(joined, keep_set(texts, flags), [], "verbatim")
        if len(texts) == 1 and flags[0]:
            return trim_output(texts[0], target_tokens, count=count, tokens=total)
        # stable sort: first occurrence order within a kind
        keeps = sorted(keep_set(texts, flags), key=lambda k: -k.weight)
        # sentences come from prose; tool output contributes its keep-set only
        prose = [t for t, flag in zip(texts, flags) if not flag]
        analysed = [_prose_of(t) for t in prose]
        sentences = [s for a in analysed for s in a[0]]
        ranked = _rank(
            sentences,
            [w for a in analysed for w in a[1]],
            [m for a in analysed for m in a[2]],
        )
        chars_per_token = max(1.0, len(joined) / max(1, total))
        budget = target_tokens * chars_per_token
        for _ in range(4):
            text, composed, _ = _compose(keeps, sentences, ranked, budget)
            used = count(text)
            if used <= target_tokens:
                kept, dropped = _split_present(keeps, text, composed)
                return Summary(text, kept, dropped, self.name)
            budget *= 0.92 * target_tokens / used
        text = _cut(text, count, target_tokens)
        kept, dropped = _split_present(keeps, text)
        return Summary(text, kept, dropped, self.name, ["cut to fit its target"])


def _split_present(
    keeps: list[Keep], text: str, composed: Sequence[Keep] = ()
) -> tuple[list[Keep], list[Keep]]:
    """The keeps ``text`` carries verbatim, and the others (one substring test each).

    ``composed`` are keeps :func:`_compose` wrote into ``text``: present by
    construction, so only the others are searched for (one may still occur inside a
    kept sentence)."""
    written = {k.text for k in composed}
    found = occurring((k.text for k in keeps if k.text not in written), text)
    kept: list[Keep] = []
    dropped: list[Keep] = []
    for keep in keeps:
        (kept if keep.text in written or keep.text in found else dropped).append(keep)
    return kept, dropped


def output_flags(texts: Sequence[str], tool_output: bool | Sequence[bool]) -> list[bool]:
    """One "is tool output" flag per text, from a single flag or a sequence."""
    return [tool_output] * len(texts) if isinstance(tool_output, bool) else list(tool_output)


def keep_set(texts: Sequence[str], tool_output: Sequence[bool]) -> list[Keep]:
    """The keep-set of several texts, without repeats, in first occurrence order."""
    seen: dict[str, Keep] = {}
    for text, flag in zip(texts, tool_output):
        for keep in extract_shared(text, not flag):
            old = seen.get(keep.text)
            if old is None or WEIGHT[keep.kind] > WEIGHT[old.kind]:
                seen[keep.text] = keep
    return list(seen.values())


#: Per text (by content digest): its sentences with their first-sentence flags, and
#: each sentence's words. A fit's builds summarise the same texts in other groupings.
_Prose = tuple[tuple[tuple[str, bool], ...], tuple[list[str], ...], tuple[bool, ...]]
_PROSE: dict[bytes, _Prose] = {}
_PROSE_SIZE = 8192
#: ... and at most about this many characters of sentences (the oldest half goes first)
_PROSE_CHARS = 4_000_000
_prose_chars = [0]


def _prose_of(text: str) -> _Prose:
    key = digest_text(text)
    found = _PROSE.get(key)
    if found is None:
        sentences: list[tuple[str, bool]] = []
        first = True
        for part in _SPLIT.split(text):
            part = part.strip()
            if len(part) >= 3:
                sentences.append((part, first))
                first = False
        # lowering an ASCII sentence first finds the same words, lowered
        findall = _WORD.findall
        words = tuple(
            findall(s.lower()) if s.isascii() else [w.lower() for w in findall(s)]
            for s, _ in sentences
        )
        if len(_PROSE) >= _PROSE_SIZE or _prose_chars[0] > _PROSE_CHARS:
            for old in list(_PROSE)[: len(_PROSE) // 2]:
                gone = _PROSE.pop(old, None)
                if gone is not None:
                    _prose_chars[0] -= sum(len(s) for s, _ in gone[0])
        _prose_chars[0] += sum(len(s) for s, _ in sentences)
        marked = tuple([_marked(s) for s, _ in sentences])
        found = _PROSE[key] = (tuple(sentences), words, marked)
    return found


def clear_cache() -> None:
    """Forget the cached sentences (benchmarks time a cold start with it)."""
    _PROSE.clear()
    _prose_chars[0] = 0


def _sentences(texts: Sequence[str]) -> list[tuple[str, bool]]:
    """Sentences of every text, with a flag for the first sentence of a text."""
    out: list[tuple[str, bool]] = []
    for text in texts:
        out.extend(_prose_of(text)[0])
    return out


def _marked(sentence: str) -> bool:
    """A sentence with a digit (``str.isdigit``), a slash or an underscore (ranked a
    little higher)."""
    if "/" in sentence or "_" in sentence:
        return True
    if sentence.isascii():  # where isdigit is 0-9: one C search, not a call per character
        return _ASCII_DIGIT.search(sentence) is not None
    return any(map(str.isdigit, sentence))


_ASCII_DIGIT = re.compile("[0-9]")


def _rank(
    sentences: list[tuple[str, bool]],
    words: Sequence[list[str]] | None = None,
    marked: Sequence[bool] | None = None,
) -> list[int]:
    """Sentence indexes, best first (deterministic: ties keep document order);
    ``words`` and ``marked`` are each sentence's words and :func:`_marked` when the
    caller has them."""
    if words is None:
        # lowering an ASCII sentence first finds the same words, lowered
        words = [
            _WORD.findall(s.lower()) if s.isascii() else [w.lower() for w in _WORD.findall(s)]
            for s, _ in sentences
        ]
    tf = Counter(w for ws in words for w in set(ws) if w not in _STOP)
    weight = {w: math.log1p(n) for w, n in tf.items()}
    scores = []
    for index, ((sentence, first), ws) in enumerate(zip(sentences, words)):
        unique = {w for w in ws if w not in _STOP}
        score = sum(weight[w] for w in unique) / math.sqrt(len(ws) + 1)
        if first:
            score += 1.0
        if marked[index] if marked is not None else _marked(sentence):
            score += 0.5
        scores.append((-score, index))
    scores.sort()
    return [index for _, index in scores]


def _compose(
    keeps: list[Keep], sentences: list[tuple[str, bool]], ranked: list[int], budget: float
) -> tuple[str, list[Keep], list[Keep]]:
    """Keep-set first, then ranked sentences, within ``budget`` characters."""
    kept: list[Keep] = []
    dropped: list[Keep] = []
    used = 0.0

    def take(group: list[Keep]) -> None:
        nonlocal used
        for keep in group:
            cost = len(keep.text) + 3
            if used + cost <= budget:
                kept.append(keep)
                used += cost
            else:
                dropped.append(keep)

    take(keeps)
    chosen: set[int] = set()
    kept_texts = {k.text for k in kept}
    prose_budget = used + (budget - used) * 0.8
    for index in ranked:
        sentence = sentences[index][0]
        if sentence in kept_texts:
            continue
        cost = len(sentence) + 3
        if used + cost > prose_budget:
            continue
        chosen.add(index)
        used += cost
    body = " … ".join(sentences[i][0] for i in sorted(chosen))
    # a constraint or decision is a whole sentence: put it in the prose, in order
    sentence_kinds = ("constraint", "decision", "error")
    whole = [k for k in kept if k.kind in sentence_kinds]
    in_body = occurring((k.text for k in whole), body)
    prose = " … ".join(filter(None, [body, *(k.text for k in whole if k.text not in in_body)]))
    rest = _render_keeps([k for k in kept if k.kind not in sentence_kinds], prose)
    text = "\n".join(filter(None, [prose, rest]))
    return text, kept, dropped


def trim_output(
    text: str, target_tokens: int, *, count: Count, tokens: int | None = None
) -> Summary:
    """Head and tail of a tool output, the middle replaced by an elision marker.

    The marker is followed by the middle's keep-set lines (errors, paths) as far as
    the target allows, so a failing test buried in a long log survives the trim.
    """
    lines = text.splitlines()
    total = count(text) if tokens is None else tokens
    if total <= target_tokens or len(lines) < 3:
        if total <= target_tokens:
            return Summary(text, extract(text, prose=False), [], "verbatim")
        cut = _cut(text, count, max(0, target_tokens - 12))
        marker = ELISION.format(lines=1)
        kept = [k for k in extract(text, prose=False) if k.text in cut]
        return Summary(f"{cut}\n{marker}", kept, [], "trim")
    chars_per_token = max(1.0, len(text) / max(1, total))
    budget = target_tokens * chars_per_token
    result = ""
    keeps = extract(text, prose=False)
    for _ in range(5):
        result, head, tail, middle = _trim_once(lines, budget, keeps)
        if _trim_tokens(text, lines, result, head, tail, middle, count) <= target_tokens:
            break
        budget *= 0.85
    else:
        result = _cut(result, count, target_tokens)
    kept, dropped = _split_present(keeps, result)
    return Summary(result, kept, dropped, "trim")


def _trim_tokens(
    text: str, lines: list[str], result: str, head: int, tail: int, middle: str, count: Count
) -> int:
    """Tokens of a trim of ``text``: from the blocks it shares with ``text`` when the
    caller's counter counted ``text`` in blocks (:func:`count_cut`), else counted
    (the C counter counts a trim faster than its blocks can be looked up)."""
    counter = getattr(count, "__self__", None)
    if isinstance(counter, CachedCounter) and counter.counts_in_blocks:
        head_chars = sum(len(line) + 1 for line in lines[:head])
        tail_chars = sum(len(line) + 1 for line in lines[len(lines) - tail :]) - 1 if tail else 0
        expected = text[:head_chars] + middle
        if tail:
            expected += "\n" + text[len(text) - tail_chars :]
        if expected == result:
            tokens = count_cut(counter, text, head_chars, middle, tail_chars)
            if tokens is not None:
                counter.remember(result, tokens)
                return tokens
    return count(result)


def _trim_once(lines: list[str], budget: float, keeps: list[Keep]) -> tuple[str, int, int, str]:
    """A trim of ``lines`` within ``budget`` characters: the text, how many first and
    last lines it keeps, and the marker (and notes) between them."""
    head_budget, tail_budget = budget * 0.4, budget * 0.25
    head: list[str] = []
    used = 0.0
    for line in lines:
        if used + len(line) + 1 > head_budget:
            break
        head.append(line)
        used += len(line) + 1
    tail: list[str] = []
    used = 0.0
    for line in reversed(lines[len(head) :]):
        if used + len(line) + 1 > tail_budget:
            break
        tail.append(line)
        used += len(line) + 1
    tail.reverse()
    middle = lines[len(head) : len(lines) - len(tail)]
    marker = ELISION.format(lines=len(middle))
    room = budget - sum(len(s) + 1 for s in head + tail) - len(marker) - 2
    notes: list[str] = []
    if middle:
        # the whole output's keep-set (cached) minus what head and tail already show
        shown = "\n".join(head + tail)
        for keep in (k for k in keeps if k.text not in shown):
            if keep.kind not in ("error", "path", "url", "identifier"):
                continue
            if len(keep.text) + 3 > room:
                continue
            notes.append(keep.text)
            room -= len(keep.text) + 3
    middle_text = "\n".join([marker, "  " + " | ".join(notes)]) if notes else marker
    return "\n".join([*head, middle_text, *tail]), len(head), len(tail), middle_text
