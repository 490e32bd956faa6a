"""The HTML face: one self-contained file with an interactive memory chart.

Everything (styles, the chart script, the data) is inlined so the report opens
offline, from an email attachment or a CI artifact, with no CDN. The chart is
drawn by a small hand-written script into SVG; when it has drawn, the figure
carries ``data-drawn="true"`` (tests check this in a real browser).

Analyses attached to a session render through their own partials: for
``session.analyses[key]`` the template ``templates/<key>_section.html`` is
included when it exists, with the analysis bound to the variable ``key`` (e.g.
``doctor``) and also to ``analysis``; other analyses fall back to their JSON.
"""

from __future__ import annotations

import json
import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

import memlens
from memlens.core.session import Session
from memlens.core.units import format_bytes, format_duration, format_tokens
from memlens.report.common import growth_rate, memory_lines, short_path, status_style
from memlens.report.output import write_atomically

TEMPLATES = Path(__file__).parent / "templates"
_ANALYSIS_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The jinja environment every report template (and analysis partial) uses.

    Filters available to partials: ``bytes``, ``signed_bytes``, ``duration``,
    ``tokens``, ``short_path``, ``pretty_json``.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bytes"] = format_bytes
    env.filters["signed_bytes"] = lambda n: format_bytes(n, signed=True)
    env.filters["duration"] = format_duration
    env.filters["tokens"] = format_tokens
    env.filters["short_path"] = short_path
    env.filters["pretty_json"] = lambda obj: json.dumps(obj, indent=2, default=str)
    return env


def line_style(points: list[tuple[float, float]], interval: float) -> str:
    """``"steps"`` for a field read far less often than the session samples.

    USS and PSS come from ``smaps_rollup`` every ``smaps_interval`` (30 s by default):
    joined by straight lines, two readings look like steady growth between them. They
    are drawn as a step per reading with a dot at each, which is what was measured.
    """
    if len(points) < 2 or interval <= 0:
        return "line"
    gaps = sorted(b[0] - a[0] for a, b in zip(points, points[1:]))
    return "steps" if gaps[len(gaps) // 2] > 5 * interval else "line"


def render_html(session: Session, env: jinja2.Environment | None = None) -> str:
    """The complete report for ``session`` as one HTML document.

    ``env`` defaults to :func:`environment`; tests pass one with extra partials.
    """
    env = env or environment()
    template = env.get_template("session.html")
    rate = growth_rate(session)
    chart = {
        "lines": [
            {
                "field": line.field,
                "label": line.label,
                "points": [[round(t, 4), v] for t, v in line.points],
                "style": line_style(line.points, session.interval),
            }
            for line in memory_lines(session)
        ],
        "duration": session.duration,
    }
    return template.render(
        session=session,
        chart=chart,
        growth_rate=rate,
        status_class=status_style(session.status),
        sites=sorted(session.top_sites, key=lambda s: s.size, reverse=True),
        components=sorted(session.components, key=lambda c: c.current, reverse=True),
        sections=[_section(env, session, key, value) for key, value in session.analyses.items()],
        version=memlens.__version__,
    )


def write_html(session: Session, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` atomically; return the path."""
    return write_atomically(Path(path), render_html(session))


def _section(env: jinja2.Environment, session: Session, key: str, value: Any) -> dict[str, Any]:
    """One analysis rendered by its partial, or as JSON when it has none."""
    title = key.replace("_", " ").capitalize()
    if _ANALYSIS_KEY.match(key):
        name = f"{key}_section.html"
        try:
            partial = env.get_template(name)
        except jinja2.TemplateNotFound:
            partial = None
        except jinja2.TemplateError as exc:
            partial = None
            title += f" (its section template is broken: {exc})"
        if partial is not None:
            try:
                value = _current_shape(key, value)
                body = partial.render({key: value, "analysis": value, "session": session})
                return {"key": key, "title": title, "html": Markup(body), "json": None}
            except Exception as exc:  # a broken partial must not cost the whole report
                log.warning("analysis section %s failed to render: %s", name, exc)
                title += f" (its section failed to render: {type(exc).__name__}: {exc})"
    text = json.dumps(value, indent=2, default=str)
    return {"key": key, "title": title, "html": None, "json": text}


def _current_shape(key: str, value: Any) -> Any:
    """A stored analysis in today's JSON shape (sessions may predate it)."""
    if key == "doctor" and isinstance(value, dict):
        from memlens.heap.doctor.diagnosis import Diagnosis

        return Diagnosis.from_dict(value).to_dict()
    if key == "diagnosis" and isinstance(value, dict):
        from memlens.core.findings import Diagnosis as AnyDiagnosis

        return AnyDiagnosis.from_dict(value).to_dict()
    return value
