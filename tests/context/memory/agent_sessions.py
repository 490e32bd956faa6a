"""Agent sessions for the memory tests, and checks of what each chat API accepts.

The sessions are generated (seeded, so deterministic): user prompts with constraints
and numbers, assistant replies with decisions, tool calls reading files and running
tests, results with errors. The validity checks restate each API's documented rules
independently of memlens's writer:

* OpenAI chat: an assistant message with ``tool_calls`` is followed by one ``tool``
  message per call id before any other message; a ``tool`` message answers a call of
  the assistant message before it; roles are from the documented set.
* Anthropic Messages: roles alternate user/assistant starting with user; every
  ``tool_use`` is answered by a ``tool_result`` in the very next (user) message, where
  tool results come before any other block; every ``tool_result`` answers a
  ``tool_use`` of the message right before it.
"""

from __future__ import annotations

import json
import random
from typing import Any

SYSTEM = "You are a careful coding agent working in the repository at /srv/app."


def _code(rng: random.Random, path: str, lines: int) -> str:
    out = [f"# {path}"]
    for i in range(lines):
        name = f"helper_{rng.randrange(1000)}"
        out.append(f"def {name}(value, limit={rng.randrange(100)}):")
        out.append(f"    return value * {rng.randrange(50)} + limit  # step {i}")
    return "\n".join(out)


def openai_session(turns: int = 40, seed: int = 1) -> list[dict[str, Any]]:
    """An OpenAI chat list: system, then ``turns`` user turns with tool calls."""
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    for t in range(turns):
        path = f"src/pkg/module_{t}.py"
        messages.append(
            {
                "role": "user",
                "content": f"Turn {t}: the handler in {path} is slow. Keep the timeout at "
                f"{30 + t} seconds and never change the public API of {path}.",
            }
        )
        call = f"call_{t}_a"
        messages.append(
            {
                "role": "assistant",
                "content": "Let me read the file first." if t % 3 else None,
                "tool_calls": [
                    {
                        "id": call,
                        "type": "function",
                        "function": {"name": "read_file", "arguments": json.dumps({"path": path})},
                    }
                ],
            }
        )
        messages.append(
            {"role": "tool", "tool_call_id": call, "content": _code(rng, path, 30 + t % 20)}
        )
        if t % 4 == 0:
            run = f"call_{t}_b"
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": run,
                            "type": "function",
                            "function": {"name": "run_tests", "arguments": "{}"},
                        },
                        {
                            "id": run + "2",
                            "type": "function",
                            "function": {"name": "lint", "arguments": "{}"},
                        },
                    ],
                }
            )
            log = "\n".join(f"tests/test_{t}.py::test_case_{i} PASSED" for i in range(40))
            log += f"\nE   KeyError: 'tenant_{t}'\nFAILED tests/test_{t}.py::test_tenant"
            messages.append({"role": "tool", "tool_call_id": run, "content": log})
            messages.append({"role": "tool", "tool_call_id": run + "2", "content": "ok"})
        messages.append(
            {
                "role": "assistant",
                "content": f"I decided to cache the lookup in module_{t} instead of "
                f"recomputing it; the patch touches {rng.randrange(3, 40)} lines.",
            }
        )
    return messages


def anthropic_session(turns: int = 40, seed: int = 2) -> list[dict[str, Any]]:
    """The same kind of session as Anthropic Messages content blocks."""
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = []
    for t in range(turns):
        path = f"lib/part_{t}.py"
        messages.append(
            {
                "role": "user",
                "content": f"Turn {t}: fix {path}. You must not add dependencies; "
                f"the budget is {100 + t} ms.",
            }
        )
        call = f"toolu_{t:03d}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Reading it."},
                    {"type": "tool_use", "id": call, "name": "read_file", "input": {"path": path}},
                ],
            }
        )
        result: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": call,
            "content": _code(rng, path, 25 + t % 15),
        }
        if t % 5 == 0:
            result["is_error"] = False
        messages.append({"role": "user", "content": [result]})
        messages.append(
            {
                "role": "assistant",
                "content": f"We'll use a bounded queue in part_{t}; done.",
            }
        )
    return messages


def check_openai(messages: list[dict[str, Any]]) -> list[str]:
    """Problems the OpenAI chat API would reject (empty list: valid)."""
    problems: list[str] = []
    open_calls: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            problems.append(f"{i}: bad role {role!r}")
        if role == "tool":
            if m.get("tool_call_id") not in open_calls:
                problems.append(f"{i}: tool result without a pending call")
            open_calls.discard(m.get("tool_call_id"))
            continue
        if open_calls:
            problems.append(f"{i}: calls {sorted(open_calls)} unanswered before a {role}")
            open_calls.clear()
        if role == "assistant" and m.get("tool_calls"):
            open_calls = {c["id"] for c in m["tool_calls"]}
        elif role in ("user", "assistant") and m.get("content") in (None, "") and role == "user":
            problems.append(f"{i}: empty user message")
    if open_calls:
        problems.append(f"end: calls {sorted(open_calls)} unanswered")
    return problems


def check_anthropic(messages: list[dict[str, Any]]) -> list[str]:
    """Problems the Anthropic Messages API would reject (empty list: valid)."""
    problems: list[str] = []
    if messages and messages[0].get("role") != "user":
        problems.append("0: first message is not from the user")
    previous_calls: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role")
        if role not in ("user", "assistant"):
            problems.append(f"{i}: bad role {role!r}")
        if i and messages[i - 1].get("role") == role:
            problems.append(f"{i}: two {role} messages in a row")
        content = m.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not blocks:
            problems.append(f"{i}: empty content")
            blocks = []
        results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        if results:
            if role != "user":
                problems.append(f"{i}: tool_result outside a user message")
            kinds = [b.get("type") for b in blocks]
            if kinds[: len(results)] != ["tool_result"] * len(results):
                problems.append(f"{i}: tool_result blocks are not first")
        if set(results) != previous_calls:
            problems.append(
                f"{i}: answers {sorted(filter(None, results))} but calls were {sorted(previous_calls)}"
            )
        previous_calls = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
    if previous_calls:
        problems.append("end: tool_use without a result")
    return problems


def pairs(messages: list[dict[str, Any]], fmt: str) -> tuple[set[str], set[str]]:
    """Call ids and result ids present in a message list."""
    calls: set[str] = set()
    results: set[str] = set()
    for m in messages:
        if fmt == "openai-chat":
            calls.update(c["id"] for c in m.get("tool_calls") or [])
            if m.get("role") == "tool":
                results.add(m["tool_call_id"])
        else:
            content = m.get("content")
            for b in content if isinstance(content, list) else []:
                if b.get("type") == "tool_use":
                    calls.add(b["id"])
                elif b.get("type") == "tool_result":
                    results.add(b["tool_use_id"])
    return calls, results
