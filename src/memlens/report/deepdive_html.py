"""HTML pages for the deep dives: one offline file, one section per analysis.

Each deep dive has a partial ``templates/<kind>_section.html`` that renders the
analysis bound to ``analysis``; the same partial renders the analysis when it is
attached to a session (``session.analyses[kind]``) in the session report.
"""

from __future__ import annotations

from typing import Any

import memlens
from memlens.report.html import environment

TITLES = {
    "objects": "Heap census",
    "lines": "Memory by line",
    "churn": "Allocation churn",
    "slim": "Memory reductions",
    "fragmentation": "Where the resident memory is",
}


def render_page(kind: str, data: dict[str, Any]) -> str:
    """A complete HTML document for deep dive ``kind``."""
    env = environment()
    page = env.get_template("deepdive_page.html")
    return page.render(
        kind=kind,
        title=TITLES.get(kind, kind),
        partial=f"{kind}_section.html",
        analysis=data,
        version=memlens.__version__,
    )
