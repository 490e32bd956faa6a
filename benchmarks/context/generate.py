"""Generate realistic Claude Code transcripts of any size for the benchmarks.

Each turn: a user prompt, an assistant response split over several lines (thinking,
text, tool_use), tool results (file reads, command output, search hits), usage figures,
and a compaction boundary every ``compact_every`` turns (a real session cannot grow
past its window without one). Text varies per turn so counts are not all cache hits.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

SESSION = "bench-0000-0000-0000-000000000000"
WORDS = [
    "refund",
    "order",
    "invoice",
    "customer",
    "payment",
    "handler",
    "request",
    "response",
    "cache",
    "token",
    "window",
    "agent",
    "context",
    "budget",
    "layer",
    "profile",
    "stream",
    "memory",
    "growth",
    "leak",
    "retry",
    "timeout",
    "queue",
    "worker",
    "batch",
    "schema",
    "migration",
    "index",
    "query",
    "session",
    "cookie",
    "header",
    "status",
    "error",
]


def _code(rng: random.Random, lines: int) -> str:
    out = []
    for i in range(lines):
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        out.append(
            f"    def {a}_{b}_{i}(self, {b}: int) -> int:\n        return self.{a} + {b} * {i}"
        )
    return "\n".join(out)


def _prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


class TranscriptWriter:
    """Writes turns one by one (so a benchmark can also append a single turn)."""

    def __init__(self, seed: int = 7, compact_every: int = 40) -> None:
        self.rng = random.Random(seed)
        self.turn = 0
        self.t = datetime(2025, 6, 1, 9, 0, tzinfo=timezone.utc)
        self.compact_every = compact_every
        self.calls = 0

    def _rec(self, kind: str, **fields: object) -> str:
        self.t += timedelta(seconds=3)
        record = {
            "parentUuid": None,
            "isSidechain": False,
            "type": kind,
            "sessionId": SESSION,
            "uuid": f"u{self.turn}-{self.calls}-{kind}",
            "version": "2.0.14",
            "timestamp": self.t.isoformat().replace("+00:00", "Z"),
        }
        record.update(fields)
        return json.dumps(record)

    def turn_lines(self) -> list[str]:
        rng = self.rng
        self.turn += 1
        lines = []
        if self.compact_every and self.turn % self.compact_every == 0:
            lines.append(
                self._rec(
                    "system",
                    subtype="compact_boundary",
                    content="Conversation compacted",
                    compactMetadata={"trigger": "auto", "preTokens": 150_000},
                )
            )
            lines.append(
                self._rec(
                    "user",
                    isCompactSummary=True,
                    message={
                        "role": "user",
                        "content": "Summary of earlier work: " + _prose(rng, 300),
                    },
                )
            )
        lines.append(self._rec("user", message={"role": "user", "content": _prose(rng, 40)}))
        for step in range(3):
            self.calls += 1
            mid, tid = f"msg_{self.calls:08d}", f"toolu_{self.calls:08d}"
            usage = {
                "input_tokens": 5,
                "cache_creation_input_tokens": 400,
                "cache_read_input_tokens": 30_000 + self.turn % (self.compact_every or 1000) * 900,
                "output_tokens": 150,
            }
            blocks = [
                {"type": "thinking", "thinking": _prose(rng, 60), "signature": "sig"},
                {"type": "text", "text": _prose(rng, 30)},
            ]
            kind = step % 3
            if kind == 0:
                tool = {
                    "type": "tool_use",
                    "id": tid,
                    "name": "Read",
                    "input": {"file_path": f"/repo/src/{rng.choice(WORDS)}.py"},
                }
                result = _code(rng, rng.randint(40, 160))
            elif kind == 1:
                tool = {
                    "type": "tool_use",
                    "id": tid,
                    "name": "Bash",
                    "input": {"command": f"pytest -q tests/test_{rng.choice(WORDS)}.py"},
                }
                result = "\n".join(
                    f"tests/test_x.py::test_{rng.choice(WORDS)}_{i} PASSED"
                    for i in range(rng.randint(20, 120))
                )
            else:
                tool = {
                    "type": "tool_use",
                    "id": tid,
                    "name": "Grep",
                    "input": {"pattern": rng.choice(WORDS), "path": "/repo"},
                }
                result = "\n".join(
                    f"src/{rng.choice(WORDS)}.py:{rng.randint(1, 900)}: {_prose(rng, 8)}"
                    for _ in range(rng.randint(10, 40))
                )
            for block in blocks + [tool]:
                lines.append(
                    self._rec(
                        "assistant",
                        requestId=f"req_{self.calls:08d}",
                        message={
                            "id": mid,
                            "type": "message",
                            "role": "assistant",
                            "model": "claude-sonnet-4-5-20250929",
                            "content": [block],
                            "usage": usage,
                        },
                    )
                )
            lines.append(
                self._rec(
                    "user",
                    message={
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": tid, "content": result}],
                    },
                    toolUseResult={"stdout": result[:200]},
                )
            )
        return lines


def write_transcript(path: Path, target_bytes: int, seed: int = 7, compact_every: int = 40) -> int:
    """Write turns to ``path`` until it holds ``target_bytes``; return the turn count."""
    writer = TranscriptWriter(seed, compact_every)
    written = 0
    with path.open("w") as handle:
        while written < target_bytes:
            chunk = "\n".join(writer.turn_lines()) + "\n"
            handle.write(chunk)
            written += len(chunk)
    return writer.turn


if __name__ == "__main__":
    import sys

    out = Path(sys.argv[1])
    size = int(float(sys.argv[2]) * 1_000_000) if len(sys.argv) > 2 else 2_000_000
    print(write_transcript(out, size), "turns")
