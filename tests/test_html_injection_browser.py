"""HTML reports and the context page keep hostile text inert, checked in Chromium.

Each payload, if it ever ran, would set ``data-pwned`` on the document element. The
payloads go into every user-controlled field: session names, descriptions, tags and
argv, allocation-site file and function names and stacks, component names; and for
the context page the transcript's tool names, tool inputs, message text, file paths
and model name. The page's own script must still run (its drawing marker is set).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memlens.context import diagnose, profile_file
from memlens.core.session import AllocationSite, ComponentUsage
from memlens.report import html as session_html
from memlens.report.context_html import render_html as context_html
from tests.browser import render
from tests.sample_sessions import make_session

RUN = "document.documentElement.setAttribute('data-pwned','1')"
PAYLOADS = [
    f"<script>{RUN}</script>",
    f"</script><script>{RUN}</script>",
    f'<img src=x onerror="{RUN}">',
    f'"><svg onload="{RUN}">',
    f"'><img src=x onerror={RUN}>",
    f"<!--<script>{RUN}</script>-->",
    f"\u2028</script><script>{RUN}</script>",
    f'<iframe srcdoc="<script>parent.{RUN}</script>"></iframe>',
    f"javascript:{RUN}",
    "<style>body{display:none}</style>",
    '{{ 7*7 }}<a href="javascript:alert(1)">x</a>',
]


def _assert_inert(dom: str) -> None:
    assert 'data-pwned="1"' not in dom
    assert "<style>body{display:none}</style>" not in dom


@pytest.mark.browser
def test_session_report_keeps_payloads_inert(tmp_path: Path) -> None:
    session = make_session(PAYLOADS[0], samples=30)
    session.description = PAYLOADS[1]
    session.tags = {f"t{i}": p for i, p in enumerate(PAYLOADS)}
    session.metadata.argv = ["app.py", *PAYLOADS]
    session.error = PAYLOADS[2]
    session.top_sites = [
        AllocationSite(
            filename=f"/app/{payload}.py",
            lineno=i + 1,
            function=payload,
            size=1000 * (i + 1),
            count=1,
            component=payload,
            stack=[f"/app/{payload}.py:{i + 1} in {payload}"],
        )
        for i, payload in enumerate(PAYLOADS)
    ]
    session.components = [ComponentUsage(name=p, current=1, peak=1) for p in PAYLOADS]
    page = tmp_path / "session.html"
    session_html.write_html(session, page)
    dom = render(page)
    _assert_inert(dom)
    assert 'data-drawn="true"' in dom  # the report's own script still ran


@pytest.mark.browser
def test_context_page_keeps_payloads_inert(tmp_path: Path) -> None:
    messages: list[dict] = [{"role": "system", "content": PAYLOADS[0]}]
    tools = []
    for i, payload in enumerate(PAYLOADS):
        call = f"call_{i}"
        messages.append({"role": "user", "content": payload})
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call,
                        "type": "function",
                        "function": {
                            "name": payload,
                            "arguments": json.dumps({"path": f"/x/{payload}.py"}),
                        },
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call, "content": payload * 50})
        tools.append({"type": "function", "function": {"name": payload, "parameters": {}}})
    request = {"model": f"gpt-4o{PAYLOADS[3]}", "messages": messages, "tools": tools}
    source = tmp_path / f"{PAYLOADS[5][:8].replace('/', '_')}.json"
    source.write_text(json.dumps(request))
    profile = profile_file(source, budget="128k")
    page = tmp_path / "context.html"
    page.write_text(context_html(profile, diagnose(profile), top=40))
    dom = render(page)
    _assert_inert(dom)
    assert 'data-rendered="true"' in dom
