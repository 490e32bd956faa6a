"""OpenAI Chat Completions requests: ``messages`` plus ``tools`` (or legacy ``functions``).

Counts follow OpenAI's published framing: 3 tokens per message plus its role, 1 more
for a ``name``, 3 to prime the reply; images by the tile formula; tool definitions as
compact JSON with a fixed allowance (see :mod:`memlens.context.formats`). A logged
``{"request": ..., "response": {"usage": ...}}`` pair also yields the API's own
``prompt_tokens`` to compare with.
"""

from __future__ import annotations

from typing import Any

from memlens.context.formats import OPENAI_CHAT
from memlens.context.images import openai_image_tokens, size_from_base64
from memlens.context.layers import Layer
from memlens.context.readers.common import as_dict, as_list, flatten_text
from memlens.context.readers.request_base import RequestReader, unwrap

FORMAT = "openai-chat"


def score(document: Any) -> int:
    """How strongly ``document`` looks like an OpenAI chat request (0 = not at all)."""
    if not isinstance(document, dict):
        return 0
    request, response = unwrap(document)
    messages = request.get("messages")
    if not isinstance(messages, list):
        return 0
    points = 1
    roles = {
        m.get("role") for m in messages if isinstance(m, dict) and isinstance(m.get("role"), str)
    }
    if roles & {"system", "developer", "tool", "function"}:
        points += 3
    if any(isinstance(m, dict) and ("tool_calls" in m or "function_call" in m) for m in messages):
        points += 3
    tools = request.get("tools")
    if isinstance(tools, list) and any(isinstance(t, dict) and "function" in t for t in tools):
        points += 3
    if "functions" in request:
        points += 3
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") in ("image_url", "input_audio") for b in content
        ):
            points += 3
            break
    model = str(request.get("model", ""))
    if model.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
        points += 2
    if response and "choices" in response:
        points += 2
    return points


class OpenAIChatReader(RequestReader):
    """Builds a window from an OpenAI chat request."""

    format = FORMAT
    overheads = OPENAI_CHAT

    def system(self, request: dict[str, Any]) -> None:
        """System prompts are messages in this format (handled in :meth:`message`)."""

    def tool_definitions(self, request: dict[str, Any]) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        for tool in as_list(request.get("tools")):
            if isinstance(tool, dict):
                inner = tool.get("function")
                spec: dict[str, Any] = inner if isinstance(inner, dict) else tool
                found.append((str(spec.get("name") or tool.get("type") or "tool"), spec))
        for legacy in as_list(request.get("functions")):
            if isinstance(legacy, dict):
                found.append((str(legacy.get("name", "function")), legacy))
        return found

    def message(self, message: dict[str, Any], mid: str, source: str) -> None:
        s = self.session
        role = str(message.get("role", "user"))
        overhead = (
            self.overheads.per_message + 1 + (self.overheads.per_name if message.get("name") else 0)
        )
        content = message.get("content")
        text, images = flatten_text(content)
        if role in ("system", "developer"):
            s.add(
                Layer.SYSTEM_PROMPT,
                text,
                id=mid,
                kind=role,
                label=f"{role} message",
                source=source,
                overhead=overhead,
            )
            return
        if role in ("tool", "function"):
            call_id = str(message.get("tool_call_id") or message.get("name") or mid)
            layer, sublayer = self.tool_result(call_id, text, mid, source, overhead)
            self._images(images, mid, source, layer, sublayer)
            return
        if role == "user":
            self.start_turn(text)
        if text or not message.get("tool_calls"):
            s.add_message(role, text, new_turn=False, id=mid, source=source, overhead=overhead)
            overhead = 0
        for index, call in enumerate(as_list(message.get("tool_calls"))):
            if not isinstance(call, dict):
                continue
            fn = as_dict(call.get("function"))
            self.tool_call(
                str(call.get("id", f"{mid}.{index}")),
                str(fn.get("name", "tool")),
                fn.get("arguments"),
                f"{mid}.call{index}",
                source,
                overhead,
            )
            overhead = 0
        legacy = message.get("function_call")
        if isinstance(legacy, dict):
            name = str(legacy.get("name", "function"))
            self.tool_call(name, name, legacy.get("arguments"), f"{mid}.call", source, overhead)
        self._images(images, mid, source, Layer.CONVERSATION, "")

    def _images(
        self, images: list[dict[str, Any]], mid: str, source: str, layer: Layer, sublayer: str
    ) -> None:
        for index, block in enumerate(images):
            spec = as_dict(block.get("image_url"))
            url = spec.get("url", "") if isinstance(spec, dict) else str(spec)
            detail = spec.get("detail", "auto") if isinstance(spec, dict) else "auto"
            size = None
            if isinstance(url, str) and url.startswith("data:") and "," in url:
                size = size_from_base64(url.split(",", 1)[1])
            tokens = openai_image_tokens(size, str(detail))
            label = (
                f"image {size[0]}×{size[1]} ({detail})" if size else f"image ({detail}, estimated)"
            )
            self.session.add(
                layer,
                tokens=tokens,
                id=f"{mid}.img{index}",
                sublayer=sublayer,
                kind="image",
                label=label,
                source=source,
            )

    def response(self, response: dict[str, Any]) -> None:
        usage = response.get("usage")
        if not isinstance(usage, dict):
            return
        details = as_dict(usage.get("prompt_tokens_details"))
        cached = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        prompt = int(usage.get("prompt_tokens") or 0)
        self.session.record_call(
            str(response.get("id", "response")),
            input_tokens=prompt - cached,
            output_tokens=int(usage.get("completion_tokens") or 0),
            cache_read_tokens=cached,
        )


__all__ = ["OpenAIChatReader", "score"]
