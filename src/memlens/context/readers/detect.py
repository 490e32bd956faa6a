"""Detect a transcript's format from its first records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memlens.context.readers import anthropic_messages, claude_code, jsontext, messages, openai_chat
from memlens.core.errors import InputFormatError

FORMATS = (claude_code.FORMAT, openai_chat.FORMAT, anthropic_messages.FORMAT)

#: Largest single JSON document read whole (JSON Lines are streamed at any size).
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024


def classify_document(document: Any) -> str | None:
    """The request format of a parsed JSON document, or ``None``."""
    document = messages.normalize(document)
    if (
        isinstance(document, list)
        and document
        and all(isinstance(m, dict) and "role" in m for m in document)
    ):
        document = {"messages": document}
    a = anthropic_messages.score(document)
    o = openai_chat.score(document)
    if not a and not o:
        return None
    if a > o:
        return anthropic_messages.FORMAT
    return openai_chat.FORMAT


def detect_format(path: Path, sample_lines: int = 50) -> str:
    """Return ``claude-code``, ``openai-chat`` or ``anthropic-messages`` for ``path``.

    Raises :class:`InputFormatError` for a missing, empty or unrecognised file.
    """
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
            lines = []
            handle.seek(0)
            for raw in handle:
                if raw.strip():
                    lines.append(raw)
                if len(lines) >= sample_lines:
                    break
    except FileNotFoundError:
        raise InputFormatError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InputFormatError(f"{path} is a directory, not a transcript") from None
    except OSError as exc:
        raise InputFormatError(f"cannot read {path}: {exc.strerror or exc}") from None
    head = head.removeprefix(b"\xef\xbb\xbf")
    if not head.strip():
        raise InputFormatError(f"{path} is empty: nothing to profile")
    first = head.lstrip()[:1]
    if first not in (b"{", b"["):
        raise InputFormatError(
            f"{path}: unknown format (expected a Claude Code JSONL transcript, "
            "an OpenAI chat or Anthropic Messages request, or a list of chat messages)"
        )
    for raw in lines:
        try:
            record = jsontext.loads(raw)
        except ValueError:
            continue
        if claude_code.looks_like(record):
            return claude_code.FORMAT
        if messages.is_message(record):
            # one message per line: the lines together are one request's messages
            return classify_document(messages.message_request([record])) or openai_chat.FORMAT
        found = classify_document(record)
        if found:
            return found
        break
    size = path.stat().st_size
    if size <= MAX_DOCUMENT_BYTES:
        try:
            document = jsontext.loads(path.read_bytes())
        except ValueError:
            document = None
        found = classify_document(document) if document is not None else None
        if found:
            return found
    raise InputFormatError(
        f"{path}: unknown format (expected a Claude Code JSONL transcript, "
        "an OpenAI chat or Anthropic Messages request, or a list of chat messages)"
    )
