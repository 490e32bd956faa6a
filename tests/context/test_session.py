"""The builder API: every layer, sub-layers, turns, budget status boundaries."""

from __future__ import annotations

import pytest

from memlens.context import ContextSession, Layer, parse_budget, status_for
from memlens.context.layers import conversation_bucket
from memlens.core.errors import ConfigError


def full_session() -> ContextSession:
    s = ContextSession(model="claude-sonnet-4-5")
    s.add_system_prompt("You are a helpful assistant. " * 20)
    s.add_tool(
        {"name": "search", "description": "Search the web", "input_schema": {"type": "object"}}
    )
    s.add_memory_file("/repo/CLAUDE.md", "Always run tests. " * 30)
    s.add_working("files", "def f():\n    return 1\n" * 50, key="file:f.py", label="f.py")
    s.add_working("modules", "module map " * 40)
    s.add_working("tasks", "1. fix bug\n2. ship")
    s.add_working("debug_info", "Traceback ... " * 25)
    s.add_long_term("archived_tasks", "closed: refactor x " * 10)
    s.add_long_term("consolidated", "facts: " * 10)
    s.add_long_term("compressed", "summary: " * 10)
    s.add_cache("hot", "hot item " * 10)
    s.add_cache("warm", "warm item " * 10)
    s.add_cache("cold", tokens=77)
    s.add_agent_state("planner", "plan state " * 30)
    s.add_agent_state("coder", "coder state " * 10)
    s.add_message("user", "Please fix it")
    s.add_message("assistant", "Done: fixed it")
    return s


def test_every_layer_and_sublayer_is_profiled() -> None:
    profile = full_session().profile()
    for layer in Layer:
        assert profile.layers[layer].tokens > 0, layer
    wm = profile.layers[Layer.WORKING_MEMORY].breakdown
    assert set(wm) == {"files", "modules", "tasks", "debug_info"} and all(wm.values())
    lt = profile.layers[Layer.LONG_TERM_MEMORY].breakdown
    assert all(lt[k] > 0 for k in ("archived_tasks", "consolidated", "compressed"))
    cache = profile.layers[Layer.CACHE].breakdown
    assert cache["cold"] == 77 and cache["hot"] > 0 and cache["warm"] > 0
    assert set(profile.layers[Layer.AGENT_STATES].breakdown) == {"planner", "coder"}
    assert profile.layers[Layer.TOOL_DEFINITIONS].breakdown == {
        "search": profile.layers[Layer.TOOL_DEFINITIONS].tokens
    }
    assert profile.total_tokens == sum(lp.tokens for lp in profile.layers.values())
    assert profile.largest_component is Layer.WORKING_MEMORY
    assert profile.budget == 200_000 and profile.available_tokens == 200_000 - profile.total_tokens


def test_agent_state_is_one_entry_per_agent() -> None:
    s = ContextSession()
    s.add_agent_state("planner", "a " * 10)
    s.add_agent_state("planner", "a much longer state " * 10)
    profile = s.profile()
    assert profile.layers[Layer.AGENT_STATES].items == 1
    assert profile.layers[Layer.AGENT_STATES].tokens == s.items["agent:planner"].tokens


def test_conversation_age_buckets() -> None:
    assert [conversation_bucket(n) for n in (0, 9, 10, 49, 50, 500)] == [
        "recent",
        "recent",
        "medium",
        "medium",
        "old",
        "old",
    ]
    s = ContextSession()
    for i in range(60):
        s.add_message("user", f"question {i}", tokens=10)
    b = s.profile().layers[Layer.CONVERSATION].breakdown
    assert b == {"recent": 100, "medium": 400, "old": 100}


@pytest.mark.parametrize(
    ("used", "status"),
    [
        (0, "healthy"),
        (699, "healthy"),
        (700, "moderate"),
        (849, "moderate"),
        (850, "high"),
        (949, "high"),
        (950, "critical"),
        (1200, "critical"),
    ],
)
def test_status_boundaries(used: int, status: str) -> None:
    s = ContextSession()
    if used:
        s.add(Layer.CONVERSATION, tokens=used)
    profile = s.profile(budget=1000)
    assert profile.status == status == status_for(used / 1000)


def test_item_fields_and_validation() -> None:
    s = ContextSession(keep_content=True)
    item = s.add("working", "hello world", sublayer="files", priority=7, source="unit", key="k")
    assert (
        item.layer is Layer.WORKING_MEMORY and item.priority == 7 and item.content == "hello world"
    )
    assert item.tokens > 0 and len(item.content_hash) == 32 and item.created is not None
    with pytest.raises(ValueError, match="sub-layer"):
        s.add_working("nonsense", "x")
    with pytest.raises(ValueError, match="unknown layer"):
        s.add("attic", "x")
    with pytest.raises(ValueError, match="content or a token count"):
        s.add(Layer.CACHE)
    with pytest.raises(ValueError, match="negative"):
        s.add(Layer.CACHE, tokens=-1)


def test_update_remove_touch_and_compact() -> None:
    s = ContextSession()
    s.add_system_prompt("system " * 10)
    s.add_message("user", "hi " * 10)
    item = s.add_working("debug_info", tokens=100, id="log")
    s.update("log", tokens=250)
    assert s.window_tokens == sum(i.tokens for i in s.items.values())
    assert item.token_history == [100, 250]
    s.touch("log")
    assert item.access_count == 2
    event = s.compact(trigger="manual")
    assert event.dropped_tokens > 250 and "log" not in s.items
    assert [i.layer for i in s.items.values()] == [Layer.SYSTEM_PROMPT]
    s.add_system_prompt("x", id="extra")
    s.remove("extra")
    assert s.window_tokens == sum(i.tokens for i in s.items.values())


@pytest.mark.parametrize("text", ["0", "-5", "abc", "12q", True])
def test_invalid_budget(text: object) -> None:
    with pytest.raises(ConfigError, match="invalid budget"):
        parse_budget(text)  # type: ignore[arg-type]


def test_budget_parsing() -> None:
    assert parse_budget("200k") == 200_000
    assert parse_budget("1M") == 1_000_000
    assert parse_budget("128000") == 128_000
    assert parse_budget(None) is None
