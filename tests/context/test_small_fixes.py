"""Small context-profiler fixes from issue #14: one meaning of ``reported_context``,
one scale for the projection, wording, plurals, the map's scale, no false cache
finding, sub-agent output tokens."""

from __future__ import annotations

import json
from pathlib import Path

from memlens.context import diagnose, profile_file
from memlens.report import context_text
from memlens.report.context_html import render_html

from .conftest import CLAUDE_CODE, OPENAI_LOGGED


def test_reported_context_means_the_context_sent_everywhere() -> None:
    profile = profile_file(CLAUDE_CODE)
    assert profile.usage is not None
    measured = [t for t in profile.timeline if t.reported_context]
    # the usage block and the last timeline point are the same figure
    assert measured[-1].reported_context == profile.usage.reported_context
    for agent in profile.agents:
        assert agent.reported_context is not None
        assert agent.output_tokens > 0  # sub-agents report their output too
        assert agent.reported_context < agent.tokens + agent.output_tokens


def test_projection_puts_the_observed_compaction_point_on_the_estimate_scale() -> None:
    profile = profile_file(CLAUDE_CODE)
    usage = profile.usage
    assert usage is not None and profile.compaction_point == 152_340  # as observed
    assert profile.projection.limit == "compaction point"
    expected = round(152_340 * usage.estimated_context / usage.reported_context)
    assert profile.projection.limit_tokens == expected


def test_usage_wording_says_which_side_is_higher(tmp_path: Path) -> None:
    profile = profile_file(OPENAI_LOGGED)
    assert profile.usage is not None
    gap = profile.usage.reported_context - profile.usage.estimated_context
    text = context_text.render_to_string(profile, diagnose(profile), width=200)
    assert f"{gap:,} tokens below the API" in text
    assert "difference" not in text
    assert f"{gap:,} tokens below the API" in render_html(profile, diagnose(profile))


def test_one_turn_is_singular(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    )
    profile = profile_file(path)
    text = context_text.render_to_string(profile, diagnose(profile))
    assert "1 turn;" in text and "1 turns" not in text
    assert '" turn" : " turns"' in render_html(profile)


def test_the_map_scale_is_the_grid_scale_in_both_faces(tmp_path: Path) -> None:
    # a window larger than its budget: the grid covers the window, so must the label
    profile = profile_file(CLAUDE_CODE, budget="4k")
    cell = max(profile.budget, profile.total_tokens) / 400
    assert context_text.cell_tokens(profile) == cell
    text = context_text.render_to_string(profile, width=200)
    assert f"1 cell ≈ {context_text.format_tokens(cell)}" in text
    assert "Math.max(data.budget, data.total_tokens, 1)" in render_html(profile)


def test_no_cache_finding_without_cache_fields(tmp_path: Path) -> None:
    logged = json.loads(OPENAI_LOGGED.read_text())
    del logged["response"]["usage"]["prompt_tokens_details"]
    path = tmp_path / "logged.json"
    path.write_text(json.dumps(logged))
    profile = profile_file(path)
    assert profile.usage is not None and profile.cache_hit_rate is None
    kinds = [f.kind for f in diagnose(profile).findings]
    assert "low_cache_hit_rate" not in kinds, kinds
    assert "cache hit rate 0" not in context_text.render_to_string(profile, diagnose(profile))
