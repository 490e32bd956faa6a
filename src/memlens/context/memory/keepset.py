"""The verifiable keep-set: exact strings a summary must carry over from its originals.

A summary may drop prose, but the strings an agent acts on — file paths, identifiers,
numbers, error messages, URLs, the user's constraints and decisions — are copied
*byte for byte*, so anyone can check a summary against its original with ``in``.
Each string has a kind and a weight; when a summary's budget cannot hold all of
them, the heaviest are kept first and the rest are reported as dropped.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from memlens.context.tokens import digest_text

#: Kinds in the order they are kept when the budget is short (heaviest first).
KINDS = ("constraint", "decision", "error", "url", "path", "identifier", "number")
WEIGHT = {kind: len(KINDS) - i for i, kind in enumerate(KINDS)}

_URL = re.compile(r"https?://[^\s<>\"'`)\]]+")
_PATH = re.compile(
    r"(?<![\w/.-])(?:\.{0,2}/)?(?:[\w.-]+/)+[\w.-]+\.[A-Za-z0-9]{1,8}\b"
    r"|(?<![\w/.-])[\w-]+\.(?:py|pyi|js|ts|tsx|jsx|md|json|toml|yaml|yml|txt|cfg|ini|sql|sh|"
    r"go|rs|java|c|h|cc|cpp|hpp|rb|php|html|css|lock|log|csv)\b"
)
#: Possessive where giving characters back can never let the rest match (each run is
#: followed by a character it cannot hold, or by a word boundary inside a word): the
#: same matches as without, found without backtracking through every word
#: (``tests/context/memory/test_keepset_prefilter.py`` checks both agree).
_IDENT = re.compile(
    r"`([^`\n]{2,80}+)`"  # anything in backticks
    r"|\b([A-Za-z_][A-Za-z0-9]*+(?:_[A-Za-z0-9]++)++)\b"  # snake_case / SCREAMING_CASE
    r"|\b([A-Z][a-z0-9]++(?:[A-Z][a-z0-9]++)++)\b"  # CamelCase
    r"|\b([a-z]++[A-Z][A-Za-z0-9]*+)\b"  # camelCase
    r"|\b([A-Za-z_]\w*+(?:\.[A-Za-z_]\w*+)++)\(\)?"  # dotted.call()
)
_NUMBER = re.compile(
    r"(?<![\w.])\d+(?:[.,:]\d+)*(?:\s?(?:ms|s|MB|GB|KB|MiB|GiB|%|k|x))?(?!\w|[.,:]\d)"
)
_ERROR = re.compile(
    r"^.*\b(?:[A-Z]\w*(?:Error|Exception|Failure)|FAILED|ERROR|Traceback|panic|fatal|"
    r"error(?:\[\w+\])?:)\b.*$",
    re.MULTILINE,
)
#: What makes a line an :data:`_ERROR` line: a line holding a match of this is matched
#: whole by :data:`_ERROR` (neither crosses a line break), one holding none not at all.
_ERROR_WORD = re.compile(
    r"\b(?:[A-Z]\w*(?:Error|Exception|Failure)|FAILED|ERROR|Traceback|panic|fatal|"
    r"error(?:\[\w+\])?:)\b"
)
_CONSTRAINT = re.compile(
    r"\b(?:must(?:n't| not)?|never|always|do not|don't|should(?:n't| not)|required?|"
    r"only use|not allowed|forbidden|at most|at least|no more than|constraint)\b",
    re.IGNORECASE,
)
_DECISION = re.compile(
    r"\b(?:decided|decision|we(?:'ll| will) use|let's use|going with|agreed|chose|"
    r"instead of|switch(?:ed)? to|settled on)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^\n]+?(?:[.!?]+(?=\s|$)|$)", re.MULTILINE)
_DEFINITION = re.compile(
    r"^\s*(?:async\s+)?(?:def|class|function|func|fn|interface|struct)\s+(\w+)", re.MULTILINE
)

#: Longest string kept whole; a longer error line or sentence is cut at a word boundary
#: to this size (the cut is still an exact substring of the original).
MAX_STRING = 240


@dataclass(frozen=True, slots=True)
class Keep:
    """One exact string to carry over, with its kind."""

    text: str
    kind: str

    @property
    def weight(self) -> int:
        return WEIGHT[self.kind]


_new = object.__new__
_set_text = vars(Keep)["text"].__set__  # the slots' descriptors
_set_kind = vars(Keep)["kind"].__set__

#: One :class:`Keep` per (kind, text) made so far, shared by every keep-set holding it
#: (a Keep is immutable): the same paths and names recur in output after output, and
#: a lookup costs less than making the object again.
_KEEPS: dict[str, dict[str, Keep]] = {kind: {} for kind in KINDS}
_KEEPS_SIZE = 16_384


def _keep(text: str, kind: str) -> Keep:
    """``Keep(text, kind)``, shared (see :data:`_KEEPS`)."""
    made = _KEEPS[kind]
    keep = made.get(text)
    if keep is None:
        if len(made) >= _KEEPS_SIZE:
            made.clear()
        # Keep(text, kind) without the frozen dataclass's __init__ (its slots set
        # directly): the same object, made about a third faster
        keep = made[text] = _new(Keep)
        _set_text(keep, text)
        _set_kind(keep, kind)
    return keep


def _clip(text: str) -> str:
    text = text.strip()
    if len(text) <= MAX_STRING:
        return text
    cut = text.rfind(" ", 0, MAX_STRING)
    return text[: cut if cut > 40 else MAX_STRING]


#: Keep-sets by (content digest, prose): a fit's rounds and retries see the same items.
#: Keyed by digest, not text, so the cache never keeps large texts alive.
_CACHE: dict[tuple[bytes, bool], tuple[Keep, ...]] = {}
_CACHE_SIZE = 8192


def extract_shared(text: str, prose: bool) -> tuple[Keep, ...]:
    """:func:`extract`'s cached result itself (a tuple shared by every caller)."""
    key = (digest_text(text), prose)
    found = _CACHE.get(key)
    if found is None:
        if len(_CACHE) >= _CACHE_SIZE:
            for old in list(_CACHE)[: _CACHE_SIZE // 2]:
                del _CACHE[old]
        found = _CACHE[key] = tuple(_extract_uncached(text, prose))
    return found


def clear_cache() -> None:
    """Forget every cached keep-set (benchmarks time a cold start with it)."""
    _CACHE.clear()
    for made in _KEEPS.values():
        made.clear()


def extract(text: str, *, prose: bool = True) -> list[Keep]:
    """Every keep-set string in ``text``, first occurrence order, without repeats.

    ``prose`` is false for tool output: numbers there are mostly line numbers and
    sizes, so only numbers in prose (what the user and assistant said) are kept.
    Results are cached by text: a fit's rounds and retries see the same items.
    """
    return list(extract_shared(text, prose))


def _extract_uncached(text: str, prose: bool) -> list[Keep]:
    found: dict[str, Keep] = {}

    def put(value: str, kind: str) -> None:
        value = value.strip()
        if len(value) > MAX_STRING:
            value = _clip(value)
        if len(value) < 2:
            return
        old = found.get(value)
        if old is None or WEIGHT[kind] > WEIGHT[old.kind]:
            found[value] = _keep(value, kind)

    # neither pattern holds a sentence end or a line break, so a sentence can match
    # only where the whole text does: one search each spares most texts the loop
    if prose and _may_hold_rule(text) and (_CONSTRAINT.search(text) or _DECISION.search(text)):
        for match in _SENTENCE.finditer(text):
            sentence = match.group(0)
            if _CONSTRAINT.search(sentence):
                put(sentence, "constraint")
            elif _DECISION.search(sentence):
                put(sentence, "decision")
    if prose:
        if "rror" in text or "xception" in text or "FAIL" in text or "atal" in text:
            for match in _ERROR.finditer(text):
                put(match.group(0), "error")
        for match in _URL.finditer(text):
            put(match.group(0).rstrip(".,;:"), "url")
        words = text.split()
        for match in _paths_in(words):
            put(match.group(0), "path")
        for match in _names_in(text, words):
            # each alternative has one group, never empty: the one that took part
            put(match.group(match.lastindex or 0), "identifier")
        for match in _NUMBER.finditer(text):
            if len(match.group(0)) >= 2:
                put(_with_context(text, match.start(), match.end()), "number")
    else:

        def put_all(values: Iterable[str], kind: str) -> None:
            # put() for each value, in one loop (tool output holds thousands of paths)
            weight = WEIGHT[kind]
            made = _KEEPS[kind]
            if len(made) >= _KEEPS_SIZE:
                made.clear()
            for value in values:
                value = value.strip()
                if len(value) > MAX_STRING:
                    value = _clip(value)
                if len(value) < 2:
                    continue
                old = found.get(value)
                if old is None or weight > WEIGHT[old.kind]:
                    keep = made.get(value)
                    if keep is None:  # _keep(value, kind), inlined for the hot loop
                        keep = made[value] = _new(Keep)
                        _set_text(keep, value)
                        _set_kind(keep, kind)
                    found[value] = keep

        _scan_output(text, put_all)
    # strings inside a kept sentence or error line need no entry of their own
    wholes = [k.text for k in found.values() if k.kind in _WHOLE]
    if not wholes:
        return list(found.values())
    inside = occurring((k.text for k in found.values() if k.kind not in _WHOLE), "\n".join(wholes))
    return [k for k in found.values() if k.kind in _WHOLE or k.text not in inside]


_WHOLE = ("constraint", "decision", "error")


# No path, and no name outside backticks, holds whitespace, and whitespace is none of
# what a pattern looks for before or after one: so the words of a text that can hold
# one, joined by spaces, give the text's own matches in the same order, each with the
# same text (``tests/context/memory/test_keepset_words.py`` checks both agree).


def _paths_in(words: list[str]) -> Iterator[re.Match[str]]:
    """:data:`_PATH`'s matches in the text ``words`` (its ``split()``) came from: both
    alternatives hold a ``.``."""
    return _PATH.finditer(" ".join([w for w in words if "." in w]))


def _names_in(text: str, words: list[str]) -> Iterator[re.Match[str]]:
    """:data:`_IDENT`'s matches in ``text`` (``words`` is its ``split()``): a text with a
    backtick is searched whole; otherwise only its words :func:`_may_name`."""
    if "`" in text:
        return _IDENT.finditer(text)
    return _IDENT.finditer(" ".join([w for w in words if _may_name(w)]))


def _may_name(word: str) -> bool:
    """False only for a word no :data:`_IDENT` alternative but the backticks' can match
    inside: one without ``_``, ``.`` or an upper-case letter (ASCII or not)."""
    return "_" in word or "." in word or not word.islower()


#: A literal every match of :data:`_CONSTRAINT` or :data:`_DECISION` holds, lowered
_RULE_WORDS = (
    "must",
    "never",
    "always",
    "do not",
    "don't",
    "should",
    "require",
    "only use",
    "not allowed",
    "forbidden",
    "at most",
    "at least",
    "no more than",
    "constraint",
    "decided",
    "decision",
    "we'll use",
    "we will use",
    "let's use",
    "going with",
    "agreed",
    "chose",
    "instead of",
    "switch",
    "settled on",
)


def _may_hold_rule(text: str) -> bool:
    """False only when neither pattern can match: an ASCII text (where ignoring case
    is lowering) holding none of their words; other texts are always searched."""
    if not text.isascii():
        return True
    lowered = text.lower()
    scan = _textscan()
    if scan is not None:  # one C pass for all the words (none holds a line break)
        return bool(scan.lines_with(lowered, _RULE_WORDS))
    return any(word in lowered for word in _RULE_WORDS)


def _with_context(text: str, start: int, end: int, words: int = 3) -> str:
    """A number with up to ``words`` words before it on its line ("retry limit to 7421"):
    still an exact substring, and it says what the number is."""
    line_start = text.rfind("\n", 0, start) + 1
    head = text[max(line_start, start - 48) : start]
    for stop in (". ", "! ", "? ", "; "):
        found = head.rfind(stop)
        if found >= 0:
            head = head[found + 2 :]
    cut = len(head)
    for _ in range(words):
        space = head.rfind(" ", 0, max(0, cut - 1))
        if space < 0:
            cut = 0 if len(head) < 48 else cut
            break
        cut = space + 1
    return text[start - len(head) + cut : end].lstrip()


_ERROR_HINTS = ("rror", "xception", "FAIL", "atal", "anic", "Traceback")
#: words a definition line holds (``async def`` lines hold ``def ``)
_DEFINES = ("def ", "class ", "function ", "func ", "fn ", "interface ", "struct ")
#: what a line :data:`_DEFINITION` matches begins with after its leading whitespace
_DEFINITION_STARTS = ("async", "def", "class", "function", "func", "fn", "interface", "struct")


def _lines_with(text: str, needle: str) -> list[tuple[int, str]]:
    """``(start, line)`` of every line containing ``needle`` (C-speed ``str.find``)."""
    out = []
    pos = text.find(needle)
    while pos >= 0:
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        out.append((start, text[start:end]))
        pos = text.find(needle, end)
    return out


_scanner: list[Any] = []


def _textscan() -> Any | None:
    """``memlens._textscan`` (the same scans in one pass each), or None."""
    if not _scanner:
        from memlens.heap.native_ext import load_extension

        _scanner.append(load_extension("_textscan"))
    return _scanner[0]


def _lines_with_any(
    text: str, needles: tuple[str, ...], scan: Any | None, starts: tuple[str, ...] | None = None
) -> list[str]:
    """The lines of ``text`` holding any of ``needles``, in order, each once; with the C
    scan and ``starts``, only those of them that begin with one of ``starts`` after their
    leading whitespace (lines no pattern anchored that way can match are left out)."""
    if scan is not None:
        lines: list[str] = (
            scan.lines_with(text, needles)
            if starts is None
            else scan.lines_with(text, needles, starts)
        )
        return lines
    found: dict[int, str] = {}
    for needle in needles:
        found.update(_lines_with(text, needle))
    return [line for _, line in sorted(found.items())]


def _scan_output(text: str, put_all: Callable[[Iterable[str], str], None]) -> None:
    """Tool output is large: find candidate lines with ``str.find``, regexes only on them.

    Only error lines, URLs, paths and the names a file defines are kept from it (every
    name a log or a file *uses* would swamp the keep-set). ``put_all(values, kind)``
    takes each kind's strings in the order found.
    """
    scan = _textscan()
    errors = _lines_with_any(text, _ERROR_HINTS, scan)
    if errors:
        # a match of _ERROR is a whole line, the lines that hold an error word: one
        # forward search each finds them sooner than _ERROR's backtracking from the end
        search = _ERROR_WORD.search
        put_all([line for line in errors if search(line)], "error")
    names = []
    for line in _lines_with_any(text, _DEFINES, scan, _DEFINITION_STARTS):
        match = _DEFINITION.match(line)  # its \s can cross lines: one line at a time
        if match:
            names.append(match.group(1))
    put_all(names, "identifier")
    if "://" in text:
        put_all((url.rstrip(".,;:") for url in _URL.findall(text)), "url")
    if scan is not None:
        runs = scan.path_runs(text)
        if runs:
            put_all(dict.fromkeys(_PATH_FAST.findall(" ".join(runs))), "path")
        return
    # str.split is far cheaper than a regex over the text. A path is made of word
    # characters, ".", "/" and "-" only, and what stands before and after it is
    # checked only for being none of those: so the words holding a slash are cut at
    # every other punctuation mark, each distinct piece holding a slash is kept, and
    # the pieces go through the regex in one call (joined by spaces): the matches of
    # the text, in the same first-occurrence order, each distinct path put once
    words = [w for w in text.split() if "/" in w]
    if words:
        pieces = " ".join(words).translate(_NOT_IN_PATH).split()
        runs = [r for r in dict.fromkeys(pieces) if "/" in r]
        put_all(dict.fromkeys(_PATH_FAST.findall(" ".join(runs))), "path")


#: Paths in tool output: at least one directory and an extension (bare file names in
#: a log are mostly noise); a simpler pattern than :data:`_PATH`, since output is large.
_PATH_FAST = re.compile(r"(?<![\w/.])[\w.-]*[A-Za-z0-9_]/[\w./-]*\.[A-Za-z][A-Za-z0-9]{0,7}\b")


#: ASCII punctuation no path holds (everything but ``. / - _``) -> a space
_NOT_IN_PATH = str.maketrans({c: " " for c in string.punctuation if c not in "./-_"})


#: :func:`occurring` indexes the text's pieces of this length that start every
#: ``_STEP`` characters.
_GRAM = 8
_STEP = 4


def occurring(needles: Iterable[str], haystack: str) -> set[str]:
    """Which ``needles`` occur in ``haystack``: exactly ``{n for n in needles if n in
    haystack}``, found faster when many strings are looked up in a long text.

    The text's 8-character pieces starting at every 4th character go into a set. A
    needle of at least 11 characters that occurs has one of those pieces inside it,
    at one of its first 4 offsets; one whose pieces there are all missing cannot
    occur, so only the others (and shorter needles) are searched for (a summary's
    keep-set has thousands of strings to look up).
    """
    wanted = list(dict.fromkeys(needles))
    if len(wanted) * len(haystack) < 1_000_000:  # a few plain searches cost less
        return {n for n in wanted if n in haystack}
    scan = _textscan()
    if scan is not None:  # the same, indexed at every position, in C
        found: set[str] = scan.occurring(wanted, haystack)
        return found
    grams = {haystack[i : i + _GRAM] for i in range(0, len(haystack) - _GRAM + 1, _STEP)}
    least = _GRAM + _STEP - 1
    return {
        n
        for n in wanted
        if (len(n) < least or any(n[j : j + _GRAM] in grams for j in range(_STEP)))
        and n in haystack
    }


def is_verifiable(keep: list[Keep], originals: str) -> bool:
    """True when every kept string occurs verbatim in ``originals``."""
    return all(k.text in originals for k in keep)
