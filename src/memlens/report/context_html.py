"""HTML face of a context profile: one self-contained file that opens offline.

The page embeds the profile as JSON and draws, with its own small script, a grid of
the window by layer (like a disk-usage map) and a per-turn timeline chart on a
``<canvas>``; no CDN, no external file.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import jinja2

from memlens.core.units import format_duration, format_tokens

if TYPE_CHECKING:
    from memlens.context.diagnose import ContextDiagnosis
    from memlens.context.profile import ContextProfile

_env: jinja2.Environment | None = None


def _environment() -> jinja2.Environment:
    global _env
    if _env is None:
        _env = jinja2.Environment(
            loader=jinja2.PackageLoader("memlens.report", "templates"),
            autoescape=jinja2.select_autoescape(["html"]),
        )
        _env.filters["tokens"] = format_tokens
        _env.filters["duration"] = format_duration
    return _env


def _script_json(data: Any) -> str:
    """JSON safe to embed inside a ``<script>`` element."""
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(
    profile: ContextProfile, diagnosis: ContextDiagnosis | None = None, *, top: int = 20
) -> str:
    """The report as one HTML document."""
    data = profile.to_dict()
    data["diagnosis"] = diagnosis.to_dict() if diagnosis else None
    template = _environment().get_template("context.html")
    return template.render(
        profile=profile,
        diagnosis=data["diagnosis"],  # as JSON, the shape the findings partial reads
        items=profile.largest_items(top),
        data_json=_script_json(data),
    )
