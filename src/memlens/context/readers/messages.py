"""Message lists that are not a request: LangChain dumps and one message per line.

Two shapes people save instead of a whole request are read as an OpenAI chat request
(the messages are the window; there are no tool definitions to count):

* **LangChain** messages, as ``messages_to_dict`` writes them
  (``{"type": "human", "data": {...}}``), as ``dumpd`` writes them
  (``{"lc": 1, "type": "constructor", "id": [..., "AIMessage"], "kwargs": {...}}``) or
  as ``model_dump()`` writes them (``{"type": "ai", "content": ..., "tool_calls": ...}``),
  in a list or under ``"messages"`` (a LangGraph state). Tool calls
  (``{"name", "args", "id"}``) become OpenAI ``tool_calls``.
* **JSON Lines of messages**: one ``{"role": ..., "content": ...}`` (or one LangChain
  message) per line, as chat histories are often appended.
"""

from __future__ import annotations

import json
from typing import Any

_TYPE_ROLE = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "developer": "developer",
    "tool": "tool",
    "function": "function",
}
_CLASS_ROLE = {
    "HumanMessage": "user",
    "HumanMessageChunk": "user",
    "AIMessage": "assistant",
    "AIMessageChunk": "assistant",
    "SystemMessage": "system",
    "SystemMessageChunk": "system",
    "ToolMessage": "tool",
    "ToolMessageChunk": "tool",
    "FunctionMessage": "function",
    "ChatMessage": "",
}


def _langchain_fields(record: Any) -> tuple[str, dict[str, Any]] | None:
    """``(role, fields)`` of one LangChain message in any of its dump shapes, or None."""
    if not isinstance(record, dict):
        return None
    if record.get("lc") == 1 and isinstance(record.get("id"), list) and record["id"]:
        kwargs = record.get("kwargs")
        role = _CLASS_ROLE.get(str(record["id"][-1]))
        if role is None or not isinstance(kwargs, dict):
            return None
        return role or str(kwargs.get("role") or "user"), kwargs
    kind = record.get("type")
    if not isinstance(kind, str):
        return None
    data = record.get("data")
    if isinstance(data, dict) and "content" in data and "role" not in record:
        role = _TYPE_ROLE.get(kind, "")
        if kind == "chat":
            role = str(data.get("role") or "user")
        return (role, data) if role else None
    if "content" in record and "role" not in record and kind in _TYPE_ROLE:
        if kind in ("user", "assistant"):
            return None  # an Anthropic/OpenAI content block, not a LangChain message
        return _TYPE_ROLE[kind], record
    return None


def _openai_message(role: str, fields: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role, "content": fields.get("content")}
    if isinstance(fields.get("name"), str):
        message["name"] = fields["name"]
    calls = fields.get("tool_calls")
    if isinstance(calls, list) and calls:
        converted = []
        for index, call in enumerate(calls):
            if not isinstance(call, dict):
                continue
            if "function" in call:  # already OpenAI's shape
                converted.append(call)
                continue
            args = call.get("args")
            converted.append(
                {
                    "id": str(call.get("id") or f"call_{index}"),
                    "type": "function",
                    "function": {
                        "name": str(call.get("name") or "tool"),
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
            )
        message["tool_calls"] = converted
    if role == "tool" and fields.get("tool_call_id") is not None:
        message["tool_call_id"] = str(fields["tool_call_id"])
    return message


def langchain_messages(document: Any) -> list[dict[str, Any]] | None:
    """OpenAI chat messages from a LangChain dump, or None if it is not one."""
    items = document.get("messages") if isinstance(document, dict) else document
    if not isinstance(items, list) or not items:
        return None
    found = [_langchain_fields(item) for item in items]
    if not all(found):
        return None
    return [_openai_message(role, fields) for role, fields in (f for f in found if f)]


def normalize(document: Any) -> Any:
    """``document`` as a request: a LangChain dump becomes ``{"messages": [...]}``."""
    converted = langchain_messages(document)
    if converted is None:
        return document
    request: dict[str, Any] = {"messages": converted}
    if isinstance(document, dict):
        request.update({k: v for k, v in document.items() if k != "messages"})
        request["messages"] = converted
    return request


def is_message(record: Any) -> bool:
    """True for one chat message on its own (a line of a message log)."""
    if _langchain_fields(record) is not None:
        return True
    return (
        isinstance(record, dict)
        and isinstance(record.get("role"), str)
        and ("content" in record or "tool_calls" in record)
        and "messages" not in record
    )


def message_request(records: list[Any]) -> dict[str, Any]:
    """One request whose messages are ``records`` (plain or LangChain messages)."""
    messages: list[Any] = []
    for record in records:
        fields = _langchain_fields(record)
        messages.append(_openai_message(*fields) if fields else record)
    return {"messages": messages}
