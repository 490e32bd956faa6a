"""Context leaks: items injected again and again, or growing turn after turn.

Three kinds come from transcripts, one from the builder API:

* ``repeated_file_read`` – the same file (same range) read ``min_repeats`` times or
  more; every read but the latest is redundant.
* ``duplicated_tool_output`` – byte-identical output of a tool (not a file read)
  injected more than once; every copy but one is redundant.
* ``growing_tool_result`` – the same call (same command, same file) returning a
  larger result each time, ``min_growth_steps`` times in a row (a log tailed with
  ``cat``, a ``git diff`` re-run); earlier snapshots are redundant.
* ``growing_item`` – a builder item whose size rose at each of its last updates.

Each leak reports the redundant tokens still in the window (what cutting it saves
now) and the redundant tokens injected over the whole session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memlens.context.session import ContextSession, Observation

LEAK_KINDS = ("repeated_file_read", "duplicated_tool_output", "growing_tool_result", "growing_item")

_ADVICE = {
    "repeated_file_read": "Read the file once and keep a note of what changed; read ranges "
    "(offset/limit) instead of the whole file, or drop stale reads from the window.",
    "duplicated_tool_output": "Cache the tool's result and refer to it instead of re-running "
    "it; de-duplicate identical tool outputs before they reach the model.",
    "growing_tool_result": "Return only what is new since the last call (tail -n, --since, "
    "a diff against the last result) instead of the whole, growing result.",
    "growing_item": "Cap the item (a rolling window or a summary) instead of appending to it.",
}


@dataclass
class ContextLeak:
    """One context leak and what it costs."""

    kind: str
    key: str
    label: str
    occurrences: int
    tokens_in_window: int
    total_tokens: int
    first_turn: int
    last_turn: int
    sizes: list[int] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)

    @property
    def recommendation(self) -> str:
        return _ADVICE[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "label": self.label,
            "occurrences": self.occurrences,
            "tokens_in_window": self.tokens_in_window,
            "total_tokens": self.total_tokens,
            "first_turn": self.first_turn,
            "last_turn": self.last_turn,
            "sizes": self.sizes[-20:],
            "item_ids": self.item_ids[-20:],
            "recommendation": self.recommendation,
        }


def _growing_tail(sizes: list[int]) -> int:
    """Length of the strictly increasing run at the end of ``sizes``."""
    run = 1
    for i in range(len(sizes) - 1, 0, -1):
        if sizes[i] > sizes[i - 1]:
            run += 1
        else:
            break
    return run if sizes else 0


def _leak(
    kind: str,
    key: str,
    redundant: list[Observation],
    all_obs: list[Observation],
    session: ContextSession,
) -> ContextLeak:
    return ContextLeak(
        kind=kind,
        key=key,
        label=all_obs[-1].label,
        occurrences=len(all_obs),
        tokens_in_window=sum(o.tokens for o in redundant if o.item_id in session.items),
        total_tokens=sum(o.tokens for o in redundant),
        first_turn=all_obs[0].turn,
        last_turn=all_obs[-1].turn,
        sizes=[o.tokens for o in all_obs],
        item_ids=[o.item_id for o in all_obs],
    )


def find_leaks(
    session: ContextSession,
    *,
    min_repeats: int = 3,
    min_duplicate_tokens: int = 50,
    min_growth_steps: int = 3,
    min_growth_tokens: int = 100,
) -> list[ContextLeak]:
    """Find context leaks in ``session``, costliest (in the window now) first."""
    leaks: list[ContextLeak] = []
    for key, history in session.observations.items():
        if len(history) < 2:
            continue
        sizes = [o.tokens for o in history]
        run = _growing_tail(sizes)
        if run >= min_growth_steps and sizes[-1] - sizes[-run] >= min_growth_tokens:
            tail = history[-run:]
            leaks.append(_leak("growing_tool_result", key, tail[:-1], tail, session))
            continue
        reads = [o for o in history if o.kind == "file_read"]
        if len(reads) >= min_repeats:
            leaks.append(_leak("repeated_file_read", key, reads[:-1], reads, session))
    for copies in session.outputs.values():
        if len(copies) >= 2 and copies[0].tokens >= min_duplicate_tokens:
            leaks.append(
                _leak("duplicated_tool_output", copies[0].label, copies[1:], copies, session)
            )
    for item in session.items.values():
        grown = item.token_history
        if len(grown) >= min_growth_steps and not item.key.startswith(("file:", "cmd:", "tool:")):
            run = _growing_tail(grown)
            if run >= min_growth_steps and grown[-1] - grown[-run] >= min_growth_tokens:
                leaks.append(
                    ContextLeak(
                        kind="growing_item",
                        key=item.key or item.id,
                        label=item.label,
                        occurrences=run,
                        tokens_in_window=grown[-1] - grown[-run],
                        total_tokens=grown[-1] - grown[-run],
                        first_turn=item.turn,
                        last_turn=item.turn,
                        sizes=list(grown[-run:]),
                        item_ids=[item.id],
                    )
                )
    leaks.sort(key=lambda leak: (leak.tokens_in_window, leak.total_tokens), reverse=True)
    return leaks
