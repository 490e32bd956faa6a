"""Anthropic Messages API requests: ``system``, ``tools`` and content blocks.

Blocks read: text, image (base64 or URL), document, tool_use, tool_result (with text
or image content, ``is_error``), thinking and redacted_thinking. The API's tool-use
system prompt is added once when tools are present, and thinking blocks of earlier
turns are dropped, as the API does. A logged request/response pair also yields the
API's own usage (input, cache read, cache write, output) to compare with.
"""

from __future__ import annotations

from typing import Any

from memlens.context.formats import ANTHROPIC_MESSAGES
from memlens.context.images import anthropic_image_tokens, size_from_base64
from memlens.context.layers import Layer
from memlens.context.readers.common import (
    as_dict,
    as_list,
    compact_json,
    flatten_text,
    memory_file_path,
)
from memlens.context.readers.request_base import RequestReader, unwrap

FORMAT = "anthropic-messages"

_ANTHROPIC_BLOCKS = {"tool_use", "tool_result", "thinking", "redacted_thinking", "document"}


def score(document: Any) -> int:
    """How strongly ``document`` looks like an Anthropic Messages request (0 = not at all)."""
    if not isinstance(document, dict):
        return 0
    request, response = unwrap(document)
    messages = request.get("messages")
    if not isinstance(messages, list):
        return 0
    points = 1
    if "system" in request:
        points += 3
    if "anthropic_version" in request or "max_tokens" in request and "system" in request:
        points += 2
    tools = request.get("tools")
    if isinstance(tools, list) and any(isinstance(t, dict) and "input_schema" in t for t in tools):
        points += 3
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            kinds = {str(b.get("type")) for b in content if isinstance(b, dict)}
            if kinds & _ANTHROPIC_BLOCKS or any(
                isinstance(b, dict) and b.get("type") == "image" and "source" in b for b in content
            ):
                points += 3
                break
    if str(request.get("model", "")).startswith("claude"):
        points += 2
    if response and response.get("type") == "message":
        points += 2
    return points


class AnthropicMessagesReader(RequestReader):
    """Builds a window from an Anthropic Messages request."""

    format = FORMAT
    overheads = ANTHROPIC_MESSAGES

    def system(self, request: dict[str, Any]) -> None:
        system = request.get("system")
        if system is None:
            return
        blocks = [system] if isinstance(system, str) else system
        if not isinstance(blocks, list):
            blocks = [compact_json(system)]
        for index, block in enumerate(blocks):
            text = block if isinstance(block, str) else flatten_text([block])[0]
            memory = memory_file_path(text)
            if memory:
                self.session.add_memory_file(memory, text, id=f"system{index}", source="system")
            else:
                self.session.add(
                    Layer.SYSTEM_PROMPT,
                    text,
                    id=f"system{index}",
                    kind="system",
                    label=f"system block {index}",
                    source="system",
                )

    def tool_definitions(self, request: dict[str, Any]) -> list[tuple[str, Any]]:
        return [
            (str(t.get("name") or t.get("type") or "tool"), t)
            for t in as_list(request.get("tools"))
            if isinstance(t, dict)
        ]

    def message(self, message: dict[str, Any], mid: str, source: str) -> None:
        s = self.session
        role = str(message.get("role", "user"))
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise ValueError("content is neither text nor a block list")
        overhead = self.overheads.per_message
        if role == "user" and any(isinstance(b, dict) and b.get("type") == "text" for b in blocks):
            first = next(b for b in blocks if isinstance(b, dict) and b.get("type") == "text")
            self.start_turn(str(first.get("text", "")))
        for index, block in enumerate(blocks):
            if not isinstance(block, dict):
                continue
            bid = f"{mid}.{index}"
            btype = block.get("type")
            if btype == "text":
                text = str(block.get("text", ""))
                memory = memory_file_path(text)
                if memory:
                    s.add_memory_file(memory, text, id=bid, source=source, overhead=overhead)
                else:
                    s.add_message(
                        role, text, new_turn=False, id=bid, source=source, overhead=overhead
                    )
            elif btype == "image":
                self._image(block, bid, source, Layer.CONVERSATION, "", overhead)
            elif btype in ("thinking", "redacted_thinking"):
                text = str(block.get("thinking") or block.get("data") or "")
                item = s.add(
                    Layer.CONVERSATION,
                    text,
                    id=bid,
                    kind="thinking",
                    label="thinking",
                    source=source,
                    overhead=overhead,
                )
                self._thinking.append(item.id)
            elif btype in ("tool_use", "server_tool_use"):
                self.tool_call(
                    str(block.get("id", bid)),
                    str(block.get("name", "tool")),
                    block.get("input"),
                    bid,
                    source,
                    overhead,
                )
            elif btype == "tool_result":
                text, images = flatten_text(block.get("content"))
                layer, sublayer = self.tool_result(
                    str(block.get("tool_use_id", "")),
                    text,
                    bid,
                    source,
                    overhead,
                    bool(block.get("is_error")),
                )
                for j, image in enumerate(images):
                    self._image(image, f"{bid}.img{j}", source, layer, sublayer, 0)
            else:
                s.add(
                    Layer.CONVERSATION,
                    compact_json(block),
                    id=bid,
                    kind=str(btype),
                    source=source,
                    overhead=overhead,
                )
            overhead = 0

    def _image(
        self,
        block: dict[str, Any],
        bid: str,
        source: str,
        layer: Layer,
        sublayer: str,
        overhead: int,
    ) -> None:
        src = as_dict(block.get("source"))
        data = src.get("data") if isinstance(src, dict) else None
        size = size_from_base64(data) if isinstance(data, str) else None
        label = f"image {size[0]}×{size[1]}" if size else "image (size unknown, estimated)"
        self.session.add(
            layer,
            tokens=anthropic_image_tokens(size),
            id=bid,
            sublayer=sublayer,
            kind="image",
            label=label,
            source=source,
            overhead=overhead,
        )

    def response(self, response: dict[str, Any]) -> None:
        usage = response.get("usage")
        if not isinstance(usage, dict):
            return
        self.session.record_call(
            str(response.get("id", "response")),
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_read_tokens=int(usage.get("cache_read_input_tokens") or 0),
            cache_write_tokens=int(usage.get("cache_creation_input_tokens") or 0),
        )
