"""Profile a transcript file, incrementally: only what was appended is read again.

:class:`ContextProfiler` remembers, per file, the byte offset it has read up to and
the reader's state; :meth:`ContextProfiler.update` reads the new complete lines,
applies them and rebuilds the profile from counts already held. Token counts are
also cached by content digest across profilers, so even a fresh profile of a grown
file tokenizes only the new text.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from memlens.context.budget import parse_budget
from memlens.context.models import get_model
from memlens.context.profile import ContextProfile
from memlens.context.readers import anthropic_messages, claude_code, jsontext, messages, openai_chat
from memlens.context.readers.claude_code import ClaudeCodeReader
from memlens.context.readers.detect import (
    FORMATS,
    MAX_DOCUMENT_BYTES,
    classify_document,
    detect_format,
)
from memlens.context.readers.request_base import RequestReader, unwrap
from memlens.context.readers.request_log import RequestLogReader
from memlens.context.session import ContextSession
from memlens.context.tokens import CachedCounter, encoding_load_seconds, get_counter
from memlens.core.errors import ConfigError, InputFormatError

_AUTO = "auto"

_A_FORMAT = {
    openai_chat.FORMAT: "an OpenAI chat request",
    anthropic_messages.FORMAT: "an Anthropic Messages request",
}

#: Lines are parsed and counted in chunks of about this many bytes: large enough for
#: a batch to keep every core busy, small enough to bound memory on huge transcripts.
CHUNK_BYTES = 2_000_000


class _LineReader(Protocol):
    """What :meth:`ContextProfiler._follow` needs of a JSON Lines reader."""

    session: ContextSession

    def texts(self, record: dict[str, Any]) -> list[str]: ...

    def feed_line(self, line: str, lineno: int) -> None: ...

    def feed_parsed(self, record: dict[str, Any], lineno: int) -> None: ...


@dataclass
class _Followed:
    """One JSON Lines file being followed: where we are and who reads it."""

    path: Path
    reader: _LineReader
    offset: int = 0
    lineno: int = 0
    inode: tuple[int, int] = (0, 0)
    pending: bytes = field(default=b"", repr=False)


class ContextProfiler:
    """Profiles one transcript or request file; call :meth:`update` as it grows.

    >>> profiler = ContextProfiler("session.jsonl", model="claude-sonnet-4-5")
    >>> profile = profiler.update()      # full read
    >>> profile = profiler.update()      # later: only the appended lines are read
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        model: str | None = None,
        budget: int | str | None = None,
        input_format: str = _AUTO,
        counter: CachedCounter | None = None,
        subagents: bool = True,
    ) -> None:
        self.path = latest_session(Path(path)) if Path(path).is_dir() else Path(path)
        self.model = model
        self.budget = parse_budget(budget)
        if model and self.budget is None:
            get_model(model)  # fail early on an unknown model without a budget
        if input_format != _AUTO and input_format not in FORMATS:
            raise ConfigError(
                f"invalid input format {input_format!r}: expected auto or {', '.join(FORMATS)}"
            )
        self.format = detect_format(self.path) if input_format == _AUTO else input_format
        self._counter = counter
        self.subagents = subagents
        self.session: ContextSession | None = None
        self._main: _Followed | None = None
        self._agents: dict[Path, _Followed] = {}
        self._not_agents: set[Path] = set()
        self._doc_stamp: tuple[int, int] | None = None
        self._log_mode: bool | None = None
        self.updates = 0

    # ------------------------------------------------------------------ public
    def update(self) -> ContextProfile:
        """Read what changed since the last call and return a fresh profile."""
        started = time.perf_counter()
        loaded_before = encoding_load_seconds()
        if not self.path.exists():
            raise InputFormatError(f"no such file: {self.path}")
        if self.format == claude_code.FORMAT:
            self._update_jsonl()
        elif self._is_log():
            self._update_log()
        else:
            self._update_document()
        assert self.session is not None
        self.updates += 1
        if not self.session.items and not self.session.turns and not self.session.agents:
            raise InputFormatError(self._empty_message())
        return self.session.profile(
            budget=self.budget,
            model=self.model,
            started=started,
            extra_warnings=self._unfinished(),
            encoding_load_seconds=encoding_load_seconds() - loaded_before,
        )

    def _unfinished(self) -> list[str]:
        """A warning for each followed file whose last line has no newline yet.

        While following, the line may still be being written and is read once it is
        complete; a one-shot profile must not drop it silently either.
        """
        warnings = []
        for followed in ([self._main] if self._main else []) + list(self._agents.values()):
            try:
                size = followed.path.stat().st_size
            except OSError:
                continue
            if size > followed.offset:
                warnings.append(
                    f"{followed.path.name} line {followed.lineno + 1}: incomplete last line "
                    f"({size - followed.offset:,} bytes, no newline), not read"
                )
        return warnings

    def _empty_message(self) -> str:
        """Why nothing was found: an empty transcript, or a file of another format."""
        if self.format == claude_code.FORMAT:
            try:
                detected = detect_format(self.path)
            except InputFormatError:
                detected = None
            if detected and detected != self.format:
                return (
                    f"{self.path}: no Claude Code transcript records; the file looks like "
                    f"{_A_FORMAT.get(detected, detected)} (try --input-format auto)"
                )
        return f"{self.path}: empty transcript, no messages to profile"

    # ------------------------------------------------------------------ JSON Lines
    def _session(self, encoding: str) -> ContextSession:
        if self.session is None:
            counter = self._counter if self._counter is not None else get_counter(encoding)
            self.session = ContextSession(
                self.model, counter=counter, source=str(self.path), format=self.format
            )
        return self.session

    def _encoding_for(self, model: str | None, default: str) -> str:
        if self.model:
            from memlens.context.models import find_model

            info = find_model(self.model)
            if info is not None:
                return info.encoding
        if model:
            from memlens.context.models import find_model

            info = find_model(model)
            if info is not None:
                return info.encoding
        return default

    def _update_jsonl(self) -> None:
        session = self._session(self._encoding_for(None, "cl100k_base"))
        if self._main is None:
            self._main = _Followed(self.path, ClaudeCodeReader(session))
        if self._follow(self._main):
            # the file was replaced or truncated: start over
            self.session = None
            self._main = None
            self._agents.clear()
            self._update_jsonl()
            return
        if self.subagents:
            for path in self._find_agent_files():
                followed = self._agents.get(path)
                if followed is None:
                    name = path.stem.removeprefix("agent-")
                    reader = ClaudeCodeReader(session.agent(name), route_sidechains=False)
                    followed = _Followed(path, reader)
                    self._agents[path] = followed
                self._follow(followed)

    def _follow(self, followed: _Followed) -> bool:
        """Read new complete lines of one file; True if the file was replaced/truncated."""
        try:
            stat = followed.path.stat()
        except FileNotFoundError:
            return False
        inode = (stat.st_dev, stat.st_ino)
        if followed.offset and (inode != followed.inode or stat.st_size < followed.offset):
            return True
        followed.inode = inode
        if stat.st_size == followed.offset:
            return False
        reader = followed.reader
        chunk: list[tuple[int, dict[str, Any] | str]] = []
        chunk_bytes = 0
        with followed.path.open("rb") as handle:
            handle.seek(followed.offset)
            for raw in handle:
                record: Any = None
                if not raw.endswith(b"\n"):
                    # a line still being written: keep it unless it is already whole JSON
                    try:
                        record = jsontext.loads(raw)
                    except ValueError:
                        break
                followed.offset += len(raw)
                followed.lineno += 1
                text = jsontext.decode(raw)
                if not text.strip():
                    continue
                if record is None:
                    try:
                        record = jsontext.loads(text)
                    except ValueError:
                        record = None
                # malformed lines keep their text: feed_line reports them in order
                chunk.append((followed.lineno, record if isinstance(record, dict) else text))
                chunk_bytes += len(raw)
                if chunk_bytes >= CHUNK_BYTES:
                    self._apply_chunk(reader, chunk)
                    chunk, chunk_bytes = [], 0
        if chunk:
            self._apply_chunk(reader, chunk)
        return False

    @staticmethod
    def _apply_chunk(reader: _LineReader, chunk: list[tuple[int, dict[str, Any] | str]]) -> None:
        """Count a chunk's new texts in one (threaded) batch, then feed its lines."""
        reader.session.counter.prime(
            text for _, entry in chunk if isinstance(entry, dict) for text in reader.texts(entry)
        )
        for lineno, entry in chunk:
            if isinstance(entry, dict):
                reader.feed_parsed(entry, lineno)
            else:
                reader.feed_line(entry, lineno)

    def _find_agent_files(self) -> list[Path]:
        directory = self.path.parent
        stem = self.path.stem
        found: list[Path] = []
        nested = directory / stem / "subagents"
        if nested.is_dir():
            found.extend(sorted(nested.glob("*.jsonl")))
        if stem.startswith("agent-"):
            return found
        for candidate in sorted(directory.glob("agent-*.jsonl")):
            if candidate in self._agents:
                found.append(candidate)
            elif candidate not in self._not_agents:
                if _first_session_id(candidate) == stem:
                    found.append(candidate)
                else:
                    self._not_agents.add(candidate)
        return found

    # ------------------------------------------------------------------ request logs
    def _is_log(self) -> bool:
        """True for a JSON Lines log of requests (decided once: the file is not one document)."""
        if self._log_mode is None:
            self._log_mode = _is_request_log(self.path)
        return self._log_mode

    def _update_log(self) -> None:
        if self._main is None:
            default = "o200k_base" if self.format == openai_chat.FORMAT else "cl100k_base"
            session = self._session(self._encoding_for(_first_model(self.path), default))
            self._main = _Followed(self.path, RequestLogReader(session, self.format))
        if self._follow(self._main):
            self.session = None
            self._main = None
            self._update_log()
            return
        reader = self._main.reader
        assert isinstance(reader, RequestLogReader)
        if reader.requests == 0:
            raise InputFormatError(f"{self.path}: no request with 'messages' found")

    # ------------------------------------------------------------------ documents
    def _update_document(self) -> None:
        stat = self.path.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._doc_stamp and self.session is not None:
            return
        self._doc_stamp = stamp
        document, warnings = _load_request(self.path)
        request, _ = unwrap(document)
        model = request.get("model") if isinstance(request.get("model"), str) else None
        default = "o200k_base" if self.format == openai_chat.FORMAT else "cl100k_base"
        session = self._session(self._encoding_for(model, default))
        for warning in warnings:
            session.warn(warning)
        reader: RequestReader
        if self.format == anthropic_messages.FORMAT:
            reader = anthropic_messages.AnthropicMessagesReader(session)
        else:
            reader = openai_chat.OpenAIChatReader(session)
        try:
            reader.read(document, source=self.path.name)
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
            # a request whose fields have the wrong types: one line, not a traceback
            raise InputFormatError(
                f"{self.path}: not a valid {self.format} request ({exc})"
            ) from None
        session.records = max(1, session.records)


def project_sessions(directory: str | os.PathLike[str]) -> list[Path]:
    """The Claude Code sessions of a project folder (``~/.claude/projects/<project>``),
    oldest first by modification time; sub-agent files (``agent-*.jsonl``) are left to
    the session that owns them."""
    folder = Path(directory)
    try:
        found = [
            p for p in folder.glob("*.jsonl") if p.is_file() and not p.name.startswith("agent-")
        ]
        found.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
    except OSError as exc:
        raise InputFormatError(f"cannot read {folder}: {exc.strerror or exc}") from None
    if not found:
        raise InputFormatError(
            f"{folder} is a directory with no transcripts (*.jsonl): give a transcript "
            "file or a Claude Code project folder"
        )
    return found


def latest_session(directory: str | os.PathLike[str]) -> Path:
    """The most recently written session of a Claude Code project folder."""
    return project_sessions(directory)[-1]


def _first_session_id(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            for raw in handle:
                if raw.strip():
                    record = jsontext.loads(raw)
                    return str(record.get("sessionId")) if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None
    return None


def _is_request_log(path: Path) -> bool:
    """A request file is a JSON Lines log unless the whole file is one JSON document."""
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        return True
    try:
        jsontext.loads(path.read_bytes())
    except ValueError:
        return _first_record(path, messages.is_message) is None
    return False


def _first_record(path: Path, accept: Any) -> Any:
    """The first valid JSON line of ``path`` if ``accept(record)``, else None."""
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                record = jsontext.loads(raw)
            except ValueError:
                continue
            return record if accept(record) else None
    return None


def _first_model(path: Path) -> str | None:
    """The ``model`` of the first valid request of a log (picks the encoding)."""
    with path.open("rb") as handle:
        for raw in handle:
            try:
                record = jsontext.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and classify_document(record):
                model = unwrap(record)[0].get("model")
                return model if isinstance(model, str) else None
    return None


def _load_request(path: Path) -> tuple[dict, list[str]]:
    """A request document: the whole file, or the last valid line of a JSONL log."""
    data = path.read_bytes()
    try:
        document = jsontext.loads(data)
    except ValueError:
        document = None
    warnings: list[str] = []
    if document is not None:
        document = messages.normalize(document)
    elif _first_record(path, messages.is_message) is not None:
        document, warnings = _message_lines(data)
    else:
        for lineno, raw in enumerate(data.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                candidate = jsontext.loads(raw)
            except ValueError:
                warnings.append(f"line {lineno}: malformed JSON, skipped")
                continue
            if classify_document(candidate):
                document = messages.normalize(candidate)
    if isinstance(document, list):
        document = {"messages": document}
    if not isinstance(document, dict):
        raise InputFormatError(f"{path}: no request with 'messages' found")
    return document, warnings


def _message_lines(data: bytes) -> tuple[dict, list[str]]:
    """A request made of JSON Lines that hold one chat message each."""
    records, warnings = [], []
    for lineno, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            record = jsontext.loads(raw)
        except ValueError:
            warnings.append(f"line {lineno}: malformed JSON, skipped")
            continue
        if messages.is_message(record):
            records.append(record)
        else:
            warnings.append(f"line {lineno}: not a chat message, skipped")
    return messages.message_request(records), warnings


def profile_file(
    path: str | os.PathLike[str],
    model: str | None = None,
    budget: int | str | None = None,
    *,
    input_format: str = _AUTO,
) -> ContextProfile:
    """Profile a transcript or request file once (format detected automatically)."""
    return ContextProfiler(path, model=model, budget=budget, input_format=input_format).update()
