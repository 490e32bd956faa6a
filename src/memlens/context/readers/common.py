"""Helpers every reader shares: timestamps, text of content, tool classification."""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from memlens.context.layers import Layer

#: File names treated as memory files (instructions the client loads every session).
MEMORY_FILE_NAMES = frozenset(
    {"claude.md", "claude.local.md", "agents.md", "memory.md", "gemini.md", ".cursorrules"}
)

_MEMORY_RE = re.compile(r"Contents of (\S+?(?:CLAUDE|AGENTS|MEMORY)(?:\.local)?\.md)", re.I)


def parse_timestamp(value: Any) -> datetime | None:
    """A UTC datetime from ISO text (``...Z`` accepted) or epoch seconds/milliseconds."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        text = str(value).strip().replace("Z", "+00:00")
        if "." in text:  # Python 3.10 accepts only 3 or 6 fraction digits
            head, _, rest = text.partition(".")
            digits = re.match(r"\d*", rest)
            frac = digits.group(0) if digits else ""
            text = f"{head}.{(frac + '000000')[:6]}{rest[len(frac) :]}"
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else an empty list (malformed fields are ignored)."""
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty dict (malformed fields are ignored)."""
    return value if isinstance(value, dict) else {}


#: ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``, built once
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=False)


def compact_json(value: Any) -> str:
    """Compact JSON text of a value (how tool inputs and schemas are counted)."""
    return _COMPACT.encode(value)


def memory_file_path(text: str) -> str | None:
    """The memory file a system reminder injects (``Contents of /x/CLAUDE.md``), if any."""
    if "CLAUDE" not in text and "AGENTS" not in text and "MEMORY" not in text:
        return None
    match = _MEMORY_RE.search(text)
    return match.group(1) if match else None


def is_memory_path(path: str) -> bool:
    return posixpath.basename(path.replace("\\", "/")).lower() in MEMORY_FILE_NAMES


@dataclass(frozen=True)
class ToolClass:
    """Where a tool's call and result land in the window, and their identity key."""

    layer: Layer
    sublayer: str
    key: str
    observe: str  # "file_read", "tool_output" or "" (not tracked for leaks)
    label: str


_FILE_READ = {"read", "notebookread", "read_file", "open_file", "view", "cat", "readfile"}
_FILE_WRITE = {"write", "edit", "multiedit", "notebookedit", "write_file", "edit_file"}
_SEARCH_WORDS = ("grep", "glob", "search", "find", "list", "ls", "tree", "symbol")
_TASK_WORDS = ("todo", "plan", "task")
_AGENT_NAMES = {"task", "agent", "dispatch_agent", "subagent", "delegate"}


def _path_of(args: dict[str, Any]) -> str:
    for name in ("file_path", "path", "notebook_path", "filename", "file", "url", "uri"):
        value = args.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def classify_tool(name: str, args: Any) -> ToolClass:
    """Classify a tool call by its name and arguments (works across clients)."""
    args = args if isinstance(args, dict) else {}
    low = name.lower()
    short = low.rsplit("__", 1)[-1]  # mcp__server__tool
    path = _path_of(args)
    if short in _AGENT_NAMES:
        agent = str(args.get("subagent_type") or args.get("description") or name)
        return ToolClass(Layer.AGENT_STATES, agent[:60], "", "", f"{name}: {agent[:50]}")
    if short in _FILE_READ or (path and ("read" in short or "fetch" in short)):
        layer = Layer.MEMORY_FILES if path and is_memory_path(path) else Layer.WORKING_MEMORY
        extra = ""
        if args.get("offset") or args.get("limit"):
            extra = f"@{args.get('offset', 0)}+{args.get('limit', '')}"
        sub = path if layer is Layer.MEMORY_FILES else "files"
        return ToolClass(layer, sub, f"file:{path}{extra}", "file_read", f"{name} {path}")
    if short in _FILE_WRITE:
        return ToolClass(Layer.WORKING_MEMORY, "files", f"file:{path}", "", f"{name} {path}")
    if short == "todowrite" or any(w in short for w in _TASK_WORDS):
        return ToolClass(Layer.WORKING_MEMORY, "tasks", f"tool:{short}", "tool_output", name)
    if any(w in short for w in _SEARCH_WORDS) or short in {"webfetch", "websearch"}:
        key = f"tool:{short}:{compact_json(args)[:200]}"
        return ToolClass(Layer.WORKING_MEMORY, "modules", key, "tool_output", f"{name} {path}")
    command = args.get("command") or args.get("cmd") or args.get("code")
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    if isinstance(command, str):
        detail = " ".join(command.split())[:200]
        return ToolClass(
            Layer.WORKING_MEMORY,
            "debug_info",
            f"cmd:{detail}",
            "tool_output",
            f"{name}: {detail[:50]}",
        )
    key = f"tool:{short}:{compact_json(args)[:200]}"
    return ToolClass(Layer.WORKING_MEMORY, "debug_info", key, "tool_output", name)


def flatten_text(content: Any) -> tuple[str, list[dict[str, Any]]]:
    """Text of a content value (string or block list) and the image blocks inside it."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if isinstance(content, dict):
        content = [content]
    if not isinstance(content, list):
        return compact_json(content), []
    parts: list[str] = []
    images: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict):
            kind = block.get("type")
            if kind in ("image", "image_url", "input_image"):
                images.append(block)
            elif isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif kind == "tool_reference" or "content" in block:
                inner, more = flatten_text(block.get("content"))
                parts.append(inner)
                images.extend(more)
            else:
                parts.append(compact_json(block))
    return "\n".join(p for p in parts if p), images
