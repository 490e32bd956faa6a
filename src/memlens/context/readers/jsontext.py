"""Parse transcript JSON defensively: one function every reader and detector uses.

Transcripts come from tools that cut output mid-character, write a byte-order mark,
or log numbers such as ``1e999``. :func:`loads` turns all of that into either a
clean value or a :class:`ValueError` the caller reports as a malformed line:

* a UTF-8 byte-order mark is dropped and invalid UTF-8 bytes become U+FFFD;
* lone surrogates (``"\\ud83d"`` with no partner) become U+FFFD, so every face can
  encode the text;
* ``NaN``, ``Infinity`` and numbers too large for a float become ``None``;
* values nested deeper than :data:`MAX_DEPTH` are refused (nothing memlens reads is
  that deep, and deeper values would exhaust the stack further on).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Deepest nesting accepted in one record.
MAX_DEPTH = 128

_BOM = "\ufeff"
_SURROGATE_ESCAPE = re.compile(r"\\[uU][dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _finite(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _no_constant(_name: str) -> None:
    return None


#: what ``json.loads(text, parse_float=_finite, parse_constant=_no_constant)`` builds
#: on every call, built once
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)


def decode(data: bytes | str) -> str:
    """Text of raw transcript bytes: UTF-8 with invalid bytes replaced, BOM dropped."""
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
    return text[1:] if text.startswith(_BOM) else text


def clean_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD (safe to encode as UTF-8)."""
    return _SURROGATE.sub("\ufffd", text)


def loads(data: bytes | str) -> Any:
    """Parse one JSON value; raise :class:`ValueError` for anything unusable."""
    text = decode(data)
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    if surrogates or text.count("[") + text.count("{") > MAX_DEPTH:
        value = _checked(value, surrogates)
    return value


def _checked(value: Any, surrogates: bool) -> Any:
    """Check depth (iteratively) and, if asked, replace lone surrogates in place."""
    if isinstance(value, str):
        return clean_text(value) if surrogates else value
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            if surrogates and any(isinstance(k, str) and _SURROGATE.search(k) for k in node):
                items = list(node.items())
                node.clear()
                node.update((clean_text(k), v) for k, v in items)
            for key, child in node.items():
                if isinstance(child, str):
                    if surrogates:
                        node[key] = clean_text(child)
                elif isinstance(child, (dict, list)):
                    stack.append((child, depth + 1))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                if isinstance(child, str):
                    if surrogates:
                        node[index] = clean_text(child)
                elif isinstance(child, (dict, list)):
                    stack.append((child, depth + 1))
    return value
