"""Per-format framing overheads: the tokens a request costs beyond its visible text.

OpenAI documents its chat framing (3 tokens per message, 1 more when a message has a
``name``, 3 to prime the reply). Function definitions are rendered into a hidden
preamble whose exact shape is not published; memlens counts each definition's
compact JSON plus a fixed allowance per tool and per tools block. Anthropic publishes
the hidden *tool-use system prompt* its API adds when tools are present (346 tokens
for ``tool_choice`` auto/none on current models) but not its message framing, for
which memlens uses OpenAI's 3 tokens per message. These allowances are estimates and
labelled as such wherever they appear.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FormatOverheads:
    """Framing tokens added by one request format."""

    name: str
    per_message: int
    per_name: int
    reply_priming: int
    per_tool: int
    tools_preamble: int


OPENAI_CHAT = FormatOverheads(
    name="openai-chat", per_message=3, per_name=1, reply_priming=3, per_tool=8, tools_preamble=12
)
ANTHROPIC_MESSAGES = FormatOverheads(
    name="anthropic-messages",
    per_message=3,
    per_name=0,
    reply_priming=0,
    per_tool=8,
    tools_preamble=346,
)
CLAUDE_CODE = FormatOverheads(
    name="claude-code", per_message=3, per_name=0, reply_priming=0, per_tool=0, tools_preamble=0
)

BY_NAME = {f.name: f for f in (OPENAI_CHAT, ANTHROPIC_MESSAGES, CLAUDE_CODE)}
