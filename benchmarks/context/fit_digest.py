"""Digests of many fitted outputs, to show a speed change alters nothing.

    python benchmarks/context/fit_digest.py > new.json
    PYTHONPATH=/path/to/older/checkout/src python benchmarks/context/fit_digest.py > old.json
    diff old.json new.json

Fits OpenAI and Anthropic lists (generated 500-turn sessions, one with tools, one
converted to Anthropic blocks, and two small test sessions) to fixed shares of their
size with ``fit_messages`` and to random budgets with one ``RequestFitter``; each digest
covers the fitted messages, the exact counts, the report and (for the fixed shares) the
memory's live entries, its archive and what ``expand`` returns for every summary,
summarised and evicted item. A refused budget is recorded with its error.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from fit_sessions import generate  # noqa: E402
from tests.context.memory.agent_sessions import anthropic_session, openai_session  # noqa: E402

from memlens.context.memory import RequestFitter, fit_messages  # noqa: E402
from memlens.context.memory.memory import BudgetError  # noqa: E402


def to_anthropic(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
    system = None
    out = []
    for m in messages:
        r = m["role"]
        if r == "system":
            system = m["content"]
            continue
        if r == "tool":
            blocks = [
                {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": m["content"]}
            ]
            role = "user"
        elif r == "assistant":
            blocks = [{"type": "text", "text": m["content"]}] if m.get("content") else []
            for c in m.get("tool_calls") or []:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": c["id"],
                        "name": c["function"]["name"],
                        "input": json.loads(c["function"]["arguments"]),
                    }
                )
            role = "assistant"
        else:
            blocks = [{"type": "text", "text": m["content"]}]
            role = "user"
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out, system


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    }
]


def digest_result(r: Any, deep: bool) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(r.messages, sort_keys=True, ensure_ascii=False).encode())
    h.update(
        json.dumps(
            [r.tokens_before, r.tokens_after, r.budget, r.system, r.tools],
            sort_keys=True,
            default=str,
        ).encode()
    )
    d = r.report.to_dict()
    h.update(json.dumps(d, sort_keys=True, default=str).encode())
    if deep:
        mem = r.memory
        for sid in d["summaries"] + d["evicted"] + d["summarized"]:
            h.update(json.dumps(r.expand(sid), ensure_ascii=False).encode())
        for aid in sorted(mem.archive.ids()):
            item = mem.expand(aid)[0] if aid not in mem.summary_of else None
            if item is not None:
                h.update(aid.encode())
                h.update(item.content.encode())
                h.update(
                    json.dumps(item.meta, sort_keys=True, default=str, ensure_ascii=False).encode()
                )
        for e in mem.ordered():
            h.update(f"{e.id}|{e.tokens}|{e.level}|{e.kind}".encode())
            h.update(e.content.encode())
        h.update(str(mem.session.window_tokens).encode())
    return h.hexdigest()[:16]


def cases() -> Any:
    big1, _ = generate(500, seed=1)
    big2, _ = generate(500, seed=2, size=0.5)
    a1, s1 = to_anthropic(big1)
    yield "oa500s1", dict(messages=big1, pinned=[1], keep_last_turns=2), (0.9, 0.5, 0.25, 0.1)
    yield "oa500s2tools", dict(messages=big2, tools=TOOLS, pinned=[1]), (0.5, 0.2)
    yield "an500s1", dict(messages=a1, system=s1, pinned=[0], keep_last_turns=2), (0.5, 0.25, 0.1)
    yield "oa40", dict(messages=openai_session(60, 3)), (0.7, 0.3, 0.15)
    yield "an40", dict(messages=anthropic_session(60, 4), system="Be brief."), (0.7, 0.3, 0.15)


def main() -> None:
    out: dict[str, str] = {}
    for name, kw, shares in cases():
        fitter = RequestFitter(**kw)
        before = fitter.tokens_before
        for share in shares:
            try:
                r = fit_messages(budget=int(before * share), **kw)
                out[f"{name}@{share}"] = digest_result(r, deep=True)
            except BudgetError as exc:
                out[f"{name}@{share}"] = "BudgetError " + str(exc)
        rng = random.Random(5)
        for _ in range(6):
            b = rng.randint(int(before * 0.05), before)
            try:
                out[f"{name}#{b}"] = digest_result(fitter.fit(b), deep=False)
            except BudgetError as exc:
                out[f"{name}#{b}"] = "BudgetError " + str(exc)[:60]
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
