"""Fuzz the context profiler with mutated transcripts and requests (issue #14).

A seeded mutator (deterministic: the same cases on every run) takes the fixtures —
a Claude Code transcript, OpenAI and Anthropic requests and request logs — and
replaces values with values of other types, huge or non-finite numbers, lone
surrogates, markup, deep nesting; deletes keys; truncates, splices and corrupts
bytes. Every case is profiled, diagnosed and rendered by every face. A case may be
refused with a :class:`MemlensError` (one line in the CLI); anything else is a
traceback and fails the test. Figures: ``docs/context.md`` ("Malformed input").
"""

from __future__ import annotations

import json
import os
import random
import traceback
from pathlib import Path
from typing import Any

from memlens.context.diagnose import diagnose
from memlens.context.profiler import ContextProfiler
from memlens.core.errors import MemlensError
from memlens.report import context_text
from memlens.report.context_html import render_html

from .conftest import FIXTURES

CASES = int(os.environ.get("FUZZ_CASES", "2000"))
SEED = 14

SEEDS = [
    FIXTURES / "claude_code" / "5f1c2a7e-0b4d-4c2e-9a51-3d8e6f7a9b10.jsonl",
    FIXTURES / "openai" / "chat_request.json",
    FIXTURES / "openai" / "chat_logged.json",
    FIXTURES / "openai" / "chat_log.jsonl",
    FIXTURES / "anthropic" / "messages_request.json",
    FIXTURES / "anthropic" / "messages_logged.json",
    FIXTURES / "anthropic" / "messages_log.jsonl",
]

EVIL: list[Any] = [
    None,
    True,
    0,
    -1,
    5,
    1e308,
    10**30,
    "",
    "x \ud83d",
    "[/bogus]",
    "[bold]a[blink]b.py",
    "<script>alert(1)</script>",
    "\x1b[31mred\u202etxt",
    "2025-13-45T99:99:99Z",
    [],
    {},
    [[[[[[[[[[]]]]]]]]]],
    {"x": 1},
    {"type": "image", "source": {"type": "base64", "data": "!!"}},
    {"type": "tool_use", "id": 5, "name": None, "input": "x"},
    {"type": "tool_result", "tool_use_id": [], "content": {"a": 1}},
]


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``node`` (dict keys and list indexes)."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _set(node: Any, path: tuple, value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    parent = node
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return node


def _mutate_value(rng: random.Random, record: Any) -> Any:
    paths = _paths(record)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(paths[1:] or paths)
        if path and rng.random() < 0.25:
            record = _set(record, path, None, delete=True)
        else:
            value = rng.choice(EVIL)
            if rng.random() < 0.05:
                value = "[" * 3000 + "]" * 3000  # text, not nesting
            record = _set(record, path, json.loads(json.dumps(value)))
        paths = _paths(record)
    return record


def _mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(6)
    at = rng.randrange(len(data) + 1)
    if choice == 0:
        return data[:at]  # truncated (often mid-line, mid-character)
    if choice == 1:
        return b"\xef\xbb\xbf" + data
    if choice == 2:
        return data[:at] + bytes(rng.randrange(256) for _ in range(8)) + data[at:]
    if choice == 3:
        return data[:at] + b"[" * 5000 + data[at:]
    if choice == 4:
        return data[:at] + b'"\\ud83d"' + data[at:]
    return data[:at] + b"\n" + data[at:]


def _shorten(node: Any) -> Any:
    """``node`` with long strings cut (keeps the shapes, makes each case cheap)."""
    if isinstance(node, str):
        return node[:160]
    if isinstance(node, dict):
        return {key: _shorten(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_shorten(value) for value in node]
    return node


def _seed_bytes(seed: Path) -> bytes:
    """The seed file with its long strings cut (malformed lines kept as they are)."""
    if seed.suffix != ".jsonl":
        return json.dumps(_shorten(json.loads(seed.read_bytes()))).encode()
    lines = []
    for line in seed.read_text().splitlines():
        try:
            lines.append(json.dumps(_shorten(json.loads(line))))
        except ValueError:
            lines.append(line)
    return ("\n".join(lines) + "\n").encode()


SEED_BYTES = {seed: _seed_bytes(seed) for seed in SEEDS}


def make_case(rng: random.Random, seed: Path) -> bytes:
    """One mutated file made from ``seed``."""
    data = SEED_BYTES[seed]
    if rng.random() < 0.3:
        return _mutate_bytes(rng, data)
    if seed.suffix == ".jsonl":
        lines = data.decode().splitlines()
        for _ in range(rng.randint(1, 3)):
            index = rng.randrange(len(lines))
            try:
                record = json.loads(lines[index])
            except ValueError:
                continue
            lines[index] = json.dumps(_mutate_value(rng, record), ensure_ascii=rng.random() < 0.5)
        return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    document = _mutate_value(rng, json.loads(data))
    return json.dumps(document).encode()


def profile_every_face(path: Path, text: bool = True) -> None:
    """Profile ``path`` and render it as JSON, HTML and text, encoded as UTF-8."""
    profile = ContextProfiler(path).update()
    diagnosis = diagnose(profile)
    data = profile.to_dict()
    data["diagnosis"] = diagnosis.to_dict()
    json.dumps(data, ensure_ascii=False).encode("utf-8")
    render_html(profile, diagnosis).encode("utf-8")
    if text:
        context_text.render_to_string(profile, diagnosis, top=10).encode("utf-8")


def test_fuzzed_transcripts_and_requests_never_traceback(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    profiled = refused = 0
    crashes: list[str] = []
    for number in range(CASES):
        seed = SEEDS[number % len(SEEDS)]
        path = tmp_path / f"case{number}{seed.suffix}"
        path.write_bytes(make_case(rng, seed))
        try:
            # the text face costs most (rich's table layout): every third case
            profile_every_face(path, text=number % 3 == 0)
            profiled += 1
        except MemlensError:
            refused += 1
        except Exception as exc:  # the bug this test exists to find
            where = traceback.extract_tb(exc.__traceback__)[-1]
            crashes.append(
                f"case {number} ({seed.name}) at {Path(where.filename).name}:{where.lineno}: "
                f"{type(exc).__name__}: {exc}"[:300]
            )
        path.unlink()
    print(f"\nfuzz: {CASES} cases, {profiled} profiled, {refused} refused, {len(crashes)} crashed")
    assert not crashes, "\n".join(crashes[:20])
