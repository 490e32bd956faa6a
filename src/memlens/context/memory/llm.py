"""LLM summarizers over the user's own OpenAI or Anthropic client.

memlens never creates a client or holds a key: pass the client you already use::

    from openai import OpenAI
    memory = ContextMemory("200k", summarizer=OpenAISummarizer(OpenAI(), "gpt-4o-mini"))

Both adapters keep the summarizer contract of the extractive default:

* **never overflow** — the texts are split into chunks so that every request (the
  instructions, the chunk and the reply it may write) fits the summarizing model's
  own window; chunk summaries that together exceed the target are summarised again;
* **keep-set** — the exact strings the keep-set names are sent as a list the model is
  told to copy verbatim; whatever it leaves out is appended after its summary (as far
  as the target allows), and the result says which strings are in it;
* **never exceed the target** — an over-long reply is cut to the target;
* **fail loudly** — if a call raises (network, quota, a malformed reply), the texts
  are summarised by the extractive summarizer instead, the summary carries a note
  saying so, and ``on_fallback`` is called (``ContextMemory`` turns it into a
  ``summarizer_fallback`` event).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from memlens.context.memory.keepset import Keep
from memlens.context.memory.summarize import (
    Count,
    ExtractiveSummarizer,
    Summary,
    _cut,
    keep_set,
    output_flags,
)
from memlens.context.models import find_model
from memlens.core.errors import ConfigError

INSTRUCTIONS = (
    "Summarise the conversation excerpt below for an AI agent that must continue the "
    "work. Keep every decision, user constraint, error, file path, identifier and "
    "number that still matters. Copy each string in the KEEP list exactly as written. "
    "Answer with the summary only, at most {target} tokens."
)

#: Tokens kept free in every request beyond the instructions, chunk and reply.
SAFETY = 256


class LLMSummarizer:
    """Base class: chunking, keep-set, target and fallback around one completion call."""

    family = "llm"

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        context_window: int | None = None,
        max_output: int = 1024,
        fallback: ExtractiveSummarizer | None = None,
        on_fallback: Callable[[str], None] | None = None,
    ) -> None:
        if client is None:
            raise ConfigError("an LLM summarizer needs your client (e.g. openai.OpenAI())")
        info = find_model(model)
        window = context_window or (info.context_window if info else None)
        if window is None:
            raise ConfigError(
                f"unknown model {model!r} for the summarizer: pass context_window=..."
            )
        if max_output <= 0 or window <= max_output + SAFETY + 64:
            raise ConfigError(f"invalid max_output={max_output} for a {window}-token window")
        self.client = client
        self.model = model
        self.context_window = window
        self.max_output = max_output
        self.fallback = fallback or ExtractiveSummarizer()
        self.on_fallback = on_fallback
        self.name = f"{self.family}:{model}"
        self.calls = 0
        self.largest_request = 0

    # subclasses call the API
    def complete(self, prompt: str, max_tokens: int) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def summarize(
        self,
        texts: Sequence[str],
        target_tokens: int,
        *,
        count: Count,
        tool_output: bool | Sequence[bool] = False,
        tokens: int | None = None,
    ) -> Summary:
        flags = output_flags(texts, tool_output)
        keeps = sorted(keep_set(texts, flags), key=lambda k: -k.weight)
        try:
            text = self._hierarchical(list(texts), target_tokens, keeps, count)
        except Exception as exc:  # any failure of the user's client: fall back, loudly
            reason = f"{self.name} failed ({type(exc).__name__}: {str(exc)[:120]})"
            if self.on_fallback is not None:
                self.on_fallback(reason)
            summary = self.fallback.summarize(
                texts, target_tokens, count=count, tool_output=flags, tokens=tokens
            )
            summary.method = f"extractive (fallback from {self.name})"
            summary.notes.append(f"{reason}; summarised extractively instead")
            return summary
        text = _with_keeps(text, keeps, target_tokens, count)
        kept = [k for k in keeps if k.text in text]
        dropped = [k for k in keeps if k.text not in text]
        return Summary(text, kept, dropped, self.name)

    def _room(self, target: int, keeps: list[Keep], count: Count) -> tuple[int, int]:
        """(tokens a chunk may have, tokens the reply may have) for one request."""
        reply = max(16, min(self.max_output, target))
        fixed = count(INSTRUCTIONS) + count(_keep_block(keeps)) + 16
        room = self.context_window - reply - fixed - SAFETY
        if room < 64:
            raise ConfigError("the summarizer's window cannot hold a chunk beside its keep list")
        return room, reply

    def _hierarchical(self, texts: list[str], target: int, keeps: list[Keep], count: Count) -> str:
        for _depth in range(6):
            room, reply = self._room(target, keeps, count)
            chunks = _chunks(texts, room, count)
            if len(chunks) == 1:
                return self._call(chunks[0], reply, keeps, count)
            share = max(16, target // len(chunks))
            texts = [self._call(c, min(reply, share), keeps, count) for c in chunks]
        raise ConfigError("summaries did not converge: the target is too small for the input")

    def _call(self, chunk: str, reply: int, keeps: list[Keep], count: Count) -> str:
        prompt = (
            INSTRUCTIONS.format(target=reply)
            + "\n\nKEEP:\n"
            + _keep_block([k for k in keeps if k.text in chunk])
            + "\n\nEXCERPT:\n"
            + chunk
        )
        size = count(prompt) + reply
        if size > self.context_window:  # never send what the model cannot take
            raise ConfigError(f"request of {size} tokens exceeds {self.context_window}")
        self.largest_request = max(self.largest_request, size)
        self.calls += 1
        answer = self.complete(prompt, reply)
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError("the model returned no text")
        return _cut(answer.strip(), count, reply)


def _keep_block(keeps: list[Keep]) -> str:
    return "\n".join(f"- {k.text}" for k in keeps)


def _chunks(texts: list[str], room: int, count: Count) -> list[str]:
    """Texts packed into chunks of at most ``room`` tokens (a long text is split)."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for text in texts:
        size = count(text)
        while size > room:  # one text larger than a request: split it by lines
            head = _cut(text, count, room)
            if not head:
                head = text[: max(1, len(text) // 2)]
            if current:
                chunks.append("\n\n".join(current))
                current, used = [], 0
            chunks.append(head)
            text = text[len(head) :]
            size = count(text)
        if used + size > room and current:
            chunks.append("\n\n".join(current))
            current, used = [], 0
        current.append(text)
        used += size
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _with_keeps(text: str, keeps: list[Keep], target: int, count: Count) -> str:
    """The model's summary plus the keep-set strings it left out, within ``target``."""
    missing = [k.text for k in keeps if k.text not in text]
    if missing:
        tail = "kept: " + " | ".join(missing)
        room = target - count(text) - 2
        if room > 8:
            text = text + "\n" + _cut(tail, count, room)
    return _cut(text, count, target)


class OpenAISummarizer(LLMSummarizer):
    """Summaries from your ``openai.OpenAI`` client (Chat Completions)."""

    family = "openai"

    def complete(self, prompt: str, max_tokens: int) -> str:
        response = self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=max_tokens,
            temperature=0,
        )
        return str(response.choices[0].message.content or "")


class AnthropicSummarizer(LLMSummarizer):
    """Summaries from your ``anthropic.Anthropic`` client (Messages)."""

    family = "anthropic"

    def complete(self, prompt: str, max_tokens: int) -> str:
        response = self.client.messages.create(
            model=self.model,
            max_tokens=max_tokens,
            messages=[{"role": "user", "content": prompt}],
        )
        return "".join(
            getattr(block, "text", "") for block in response.content if block.type == "text"
        )
