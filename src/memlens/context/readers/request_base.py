"""Shared walk over a chat request (messages, tools, system) for the request readers."""

from __future__ import annotations

import contextlib
from typing import Any

from memlens.context.formats import FormatOverheads
from memlens.context.layers import Layer
from memlens.context.readers import jsontext
from memlens.context.readers.common import ToolClass, classify_tool, compact_json
from memlens.context.session import ContextSession

#: What :func:`classify_tool` gives a result whose call this request does not hold (a
#: fitted list re-read in parts has many): always the same, so made once.
_UNKNOWN_TOOL = classify_tool("unknown", {})


def unwrap(document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The request inside a logged ``{"request"|"body": ..., "response": ...}`` wrapper."""
    response = document.get("response") if isinstance(document.get("response"), dict) else None
    for key in ("request", "body", "params"):
        inner = document.get(key)
        if isinstance(inner, dict) and "messages" in inner:
            return inner, response
    return document, response


class RequestReader:
    """Base class: builds a window from one request document."""

    format = "request"
    overheads: FormatOverheads

    def __init__(self, session: ContextSession) -> None:
        self.session = session
        self._pending: dict[str, tuple[str, Any, ToolClass]] = {}
        self._thinking: list[str] = []

    def read(self, document: dict[str, Any], source: str = "request") -> None:
        """Replace the session's window with the request in ``document``."""
        s = self.session
        s.reset_window()
        self._pending.clear()
        self._thinking.clear()
        request, response = unwrap(document)
        model = request.get("model")
        if isinstance(model, str) and model:
            s.seen_model = model
            s.model = s.model or model
        self.system(request)
        self.tools(request)
        messages = request.get("messages")
        if not isinstance(messages, list):
            raise ValueError("request has no 'messages' list")
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                s.warn(f"{source}: message {index} is not an object, skipped")
                continue
            try:
                self.message(message, f"m{index}", f"{source} message {index}")
            except (TypeError, ValueError, AttributeError) as exc:
                s.warn(f"{source}: message {index} has an unexpected shape ({exc}), skipped")
        if self.overheads.reply_priming:
            s.add(
                Layer.CONVERSATION,
                tokens=self.overheads.reply_priming,
                id="reply-priming",
                kind="overhead",
                label="reply priming (format overhead)",
            )
        if response:
            self.response(response)

    # subclasses fill these in
    def system(self, request: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def message(self, message: dict[str, Any], mid: str, source: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def response(self, response: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def tool_definitions(self, request: dict[str, Any]) -> list[tuple[str, Any]]:
        raise NotImplementedError  # pragma: no cover - abstract

    # shared pieces
    def tools(self, request: dict[str, Any]) -> None:
        definitions = self.tool_definitions(request)
        for index, (name, definition) in enumerate(definitions):
            overhead = self.overheads.per_tool + (
                self.overheads.tools_preamble if index == 0 else 0
            )
            self.session.add(
                Layer.TOOL_DEFINITIONS,
                compact_json(definition),
                id=f"tool:{index}:{name}",
                sublayer=name,
                label=name,
                kind="tool_definition",
                overhead=overhead,
                source=f"tools[{index}]",
            )

    def start_turn(self, text: str) -> None:
        s = self.session
        for item_id in self._thinking:
            if item_id in s.items:
                s.remove(item_id)
        self._thinking.clear()
        s.new_turn(None, label=" ".join(text.split())[:80])

    def tool_call(
        self, call_id: str, name: str, args: Any, bid: str, source: str, overhead: int
    ) -> None:
        s = self.session
        if isinstance(args, str):
            with contextlib.suppress(ValueError):
                args = jsontext.loads(args)
        cls = classify_tool(name, args)
        self._pending[call_id] = (name, args, cls)
        payload = compact_json({"name": name, "arguments": args})
        if cls.layer is Layer.AGENT_STATES:
            s.add(
                Layer.AGENT_STATES,
                payload,
                id=bid,
                sublayer=cls.sublayer,
                kind="tool_use",
                agent=cls.sublayer,
                label=f"{cls.label} (call)",
                source=source,
                overhead=overhead,
            )
        elif cls.sublayer == "files" and not cls.observe:
            s.add(
                Layer.WORKING_MEMORY,
                payload,
                id=bid,
                sublayer="files",
                kind="tool_use",
                key=cls.key,
                label=f"{cls.label} (call)",
                source=source,
                overhead=overhead,
            )
        else:
            s.add(
                Layer.CONVERSATION,
                payload,
                id=bid,
                kind="tool_use",
                label=f"call {cls.label}",
                source=source,
                overhead=overhead,
            )

    def tool_result(
        self, call_id: str, text: str, bid: str, source: str, overhead: int, is_error: bool = False
    ) -> tuple[Layer, str]:
        s = self.session
        pending = self._pending.pop(call_id, None)
        cls = pending[2] if pending else _UNKNOWN_TOOL
        layer, sublayer = cls.layer, cls.sublayer
        if is_error:
            layer, sublayer = Layer.WORKING_MEMORY, "debug_info"
        item = s.add(
            layer,
            text,
            id=bid,
            sublayer=sublayer,
            kind="tool_result",
            label=f"{cls.label} → result" if pending else "tool result",
            key=cls.key,
            source=source,
            overhead=overhead,
            agent=sublayer if layer is Layer.AGENT_STATES else "",
        )
        if cls.observe and not is_error and layer is not Layer.AGENT_STATES:
            s.observe(item, cls.observe)
        return layer, sublayer
