"""LLM summarizers over real OpenAI and Anthropic SDK clients, talking real HTTP to a
local server that answers like each API (a tiny deterministic "model": the first
sentence of the excerpt and the first two KEEP strings)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from memlens.context.memory import (
    AnthropicSummarizer,
    ContextMemory,
    MemoryEvent,
    OpenAISummarizer,
)
from memlens.context.tokens import get_counter
from memlens.core.errors import ConfigError

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

COUNT = get_counter("cl100k_base").count


class _Model(BaseHTTPRequestHandler):
    fail = False
    prompts: list[str] = []

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Model.fail:
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "overloaded", "type": "server_error"}}')
            return
        prompt = body["messages"][0]["content"]
        _Model.prompts.append(prompt)
        excerpt = prompt.split("EXCERPT:\n", 1)[1]
        keeps = [line[2:] for line in prompt.split("KEEP:\n", 1)[1].split("\n") if line[:2] == "- "]
        answer = excerpt.split(".")[0][:200] + ". " + " ".join(keeps[:2])
        if self.path.endswith("/chat/completions"):
            reply = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": answer},
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        else:
            reply = {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": [{"type": "text", "text": answer}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 1},
            }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    _Model.fail = False
    _Model.prompts = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _texts() -> list[str]:
    return [
        f"Turn {i}. We decided to use the queue in src/jobs/runner_{i}.py instead of cron. "
        f"The user said the batch must never exceed {100 + i} rows. " + "filler words " * 60
        for i in range(30)
    ]


def _clients(base: str) -> list[Any]:
    return [
        OpenAISummarizer(
            openai.OpenAI(base_url=base + "/v1", api_key="k", max_retries=0),
            "gpt-4o-mini",
            context_window=2000,
            max_output=200,
        ),
        AnthropicSummarizer(
            anthropic.Anthropic(base_url=base, api_key="k", max_retries=0),
            "claude-haiku-4-5",
            context_window=2000,
            max_output=200,
        ),
    ]


def test_chunks_never_exceed_the_window_and_keep_set_survives(server: str) -> None:
    for summarizer in _clients(server):
        _Model.prompts = []
        summary = summarizer.summarize(_texts(), 400, count=COUNT)
        assert summarizer.calls > 1, "30 texts in a 2000-token window need several calls"
        assert summarizer.largest_request <= 2000
        assert all(COUNT(p) + 200 <= 2000 for p in _Model.prompts)
        assert COUNT(summary.text) <= 400
        assert summary.method == summarizer.name
        for keep in summary.kept:
            assert keep.text in summary.text and keep.text in "\n".join(_texts())


def test_failure_falls_back_loudly(server: str) -> None:
    _Model.fail = True
    for summarizer in _clients(server):
        events: list[MemoryEvent] = []
        memory = ContextMemory(3000, summarizer=summarizer, keep_last_turns=0)
        memory.subscribe(events.append)
        for text in _texts():
            memory.add_message("assistant", text)
        report = memory.fit(1500)
        assert report.fits
        assert any(e.action == "summarizer_fallback" for e in events)
        noted = [e for e in memory.entries.values() if any("extractively" in n for n in e.notes)]
        assert noted, "the summaries say they were made by the fallback"


def test_memory_uses_the_llm_summaries(server: str) -> None:
    summarizer = _clients(server)[0]
    memory = ContextMemory(3000, summarizer=summarizer, keep_last_turns=0)
    originals = [memory.add_message("assistant", t).id for t in _texts()]
    memory.fit(1200)
    assert summarizer.calls >= 1 and memory.tokens <= 1200
    for item_id in originals:
        assert memory.expand(item_id)[0].content in _texts()


def test_bad_summarizer_settings() -> None:
    with pytest.raises(ConfigError, match="client"):
        OpenAISummarizer(None, "gpt-4o-mini")
    with pytest.raises(ConfigError, match="unknown model"):
        OpenAISummarizer(object(), "my-private-model")
    with pytest.raises(ConfigError, match="max_output"):
        OpenAISummarizer(object(), "gpt-4o-mini", context_window=500, max_output=400)
