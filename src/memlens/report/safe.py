"""Text from users and programs, made safe to show in a terminal.

Session names, file names, tool names and transcript text are shown as they are,
never interpreted: rich markup (``[/x]``) is not parsed, and characters that would
act on the terminal instead of being shown — escape sequences, other control
characters, bidirectional overrides such as U+202E, lone surrogates — are printed
as visible escapes (``\\x1b``, ``\\u202e``).
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 controls except tab and newline, DEL and C1 controls, bidirectional controls,
# and lone surrogates (which no terminal encoding can write).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_UNSAFE_LINE = re.compile("[\n\t]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object, *, one_line: bool = False) -> str:
    """``text`` with characters that act on a terminal shown as escapes.

    With ``one_line``, newlines and tabs are shown as spaces too (table cells).
    """
    value = _UNSAFE.sub(_escape, str(text))
    return _UNSAFE_LINE.sub(" ", value) if one_line else value


def plain(text: object, style: str = "", *, one_line: bool = True) -> Text:
    """A rich :class:`Text` of ``text`` that is never parsed as markup."""
    return Text(printable(text, one_line=one_line), style=style)
