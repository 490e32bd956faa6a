"""Read a request to fit from any file the profiler reads.

An OpenAI chat or Anthropic Messages request (a logged ``{"request": ...}`` wrapper or
a bare message list too) is returned as it is; a Claude Code transcript becomes the
Anthropic request its next API call would send: the messages after the last
compaction (the compaction summary first), one message per API response (the lines of
one response share a message id), sidechain and meta lines left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memlens.context.readers import claude_code
from memlens.context.readers.detect import MAX_DOCUMENT_BYTES, detect_format
from memlens.context.readers.request_base import unwrap
from memlens.core.errors import InputFormatError


def load_request(path: str | Path) -> tuple[str, dict[str, Any]]:
    """``(format, request)`` for ``path``; raises :class:`InputFormatError`."""
    file = Path(path)
    fmt = detect_format(file)
    if fmt == claude_code.FORMAT:
        return "anthropic-messages", _from_transcript(file)
    if file.stat().st_size > MAX_DOCUMENT_BYTES:
        raise InputFormatError(f"{file} is too large to fit as one request")
    try:
        document = json.loads(file.read_bytes())
    except ValueError as exc:
        raise InputFormatError(f"{file}: not valid JSON ({exc})") from None
    if isinstance(document, list):
        document = {"messages": document}
    request, _ = unwrap(document)
    if not isinstance(request.get("messages"), list):
        raise InputFormatError(f"{file}: the request has no 'messages' list")
    return fmt, dict(request)


def _from_transcript(file: Path) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    last_id: str | None = None
    with file.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or record.get("isSidechain"):
                continue
            if record.get("type") == "system" and record.get("subtype") == "compact_boundary":
                messages.clear()
                last_id = None
                continue
            if record.get("type") not in ("user", "assistant") or record.get("isMeta"):
                continue
            message = record.get("message")
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                continue
            content = message.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(blocks, list):
                continue
            blocks = [b for b in blocks if isinstance(b, dict)]
            mid = message.get("id")
            if mid and mid == last_id and messages and messages[-1]["role"] == message["role"]:
                for block in blocks:  # one response written as several lines
                    if block not in messages[-1]["content"]:
                        messages[-1]["content"].append(block)
                continue
            last_id = mid
            messages.append({"role": message["role"], "content": list(blocks)})
    if not messages:
        raise InputFormatError(f"{file}: the transcript has no messages to fit")
    return {"messages": _pair(messages)}


def _pair(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop tool uses left without a result (an interrupted call) and results without a
    call (their call was compacted away), so the request is one the API accepts."""
    answered = {
        b.get("tool_use_id")
        for m in messages
        for b in m["content"]
        if b.get("type") == "tool_result"
    }
    called: set[Any] = set()
    out = []
    for m in messages:
        blocks = []
        for b in m["content"]:
            kind = b.get("type")
            if kind == "tool_use" and b.get("id") not in answered:
                continue
            if kind == "tool_result" and b.get("tool_use_id") not in called:
                continue
            if kind == "tool_use":
                called.add(b.get("id"))
            blocks.append(b)
        if blocks:
            out.append({"role": m["role"], "content": blocks})
    return out
