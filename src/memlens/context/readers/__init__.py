"""Transcript and request readers, one module per format, plus detection."""

from __future__ import annotations

from memlens.context.readers.anthropic_messages import AnthropicMessagesReader
from memlens.context.readers.claude_code import ClaudeCodeReader
from memlens.context.readers.openai_chat import OpenAIChatReader

__all__ = ["AnthropicMessagesReader", "ClaudeCodeReader", "OpenAIChatReader"]
