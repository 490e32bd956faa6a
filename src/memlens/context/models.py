"""Model context windows: a table shipped with memlens that users can extend.

Lookup is by the longest matching name prefix, so ``claude-sonnet-4-5-20250929``
finds ``claude-sonnet-4-5`` and ``gpt-4o-mini-2024-07-18`` finds ``gpt-4o``. Extend
the table with :func:`register_model`, or point ``MEMLENS_CONTEXT_MODELS`` at a JSON
file shaped like ``memlens/context/data/models.json``.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from memlens.core.errors import ConfigError

#: Window assumed when neither a model nor a budget is known.
DEFAULT_CONTEXT_WINDOW = 200_000


@dataclass(frozen=True)
class ModelInfo:
    """A model's context window and how memlens counts its tokens.

    ``encoding`` is the tiktoken encoding used to count. Anthropic does not publish a
    Claude tokenizer that runs offline, so Claude models are counted with
    ``cl100k_base`` and every count is labelled an estimate.
    """

    name: str
    context_window: int
    family: str = "unknown"
    encoding: str = "cl100k_base"
    max_output: int | None = None

    @property
    def exact_tokenizer(self) -> bool:
        """True when ``encoding`` is the model's own tokenizer (OpenAI models)."""
        return self.family == "openai"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_lock = threading.Lock()
_table: dict[str, ModelInfo] | None = None


def _from_mapping(entry: dict[str, Any], origin: str) -> ModelInfo:
    try:
        name = str(entry["name"])
        window = int(entry["context_window"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(
            f"invalid model entry in {origin}: needs 'name' and an integer 'context_window'"
        ) from None
    if window <= 0:
        raise ConfigError(f"invalid model {name!r} in {origin}: context_window must be > 0")
    max_output = entry.get("max_output")
    return ModelInfo(
        name=name,
        context_window=window,
        family=str(entry.get("family", "unknown")),
        encoding=str(entry.get("encoding", "cl100k_base")),
        max_output=int(max_output) if max_output is not None else None,
    )


def load_models_file(path: str | os.PathLike[str]) -> list[ModelInfo]:
    """Read a models JSON file (``{"models": [...]}`` or a bare list)."""
    origin = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"models file not found: {origin}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read models file {origin}: {exc}") from None
    entries = data.get("models", []) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ConfigError(f"invalid models file {origin}: expected a list under 'models'")
    return [_from_mapping(e, origin) for e in entries if isinstance(e, dict)]


def _load_table() -> dict[str, ModelInfo]:
    global _table
    with _lock:
        if _table is None:
            text = (
                resources.files("memlens.context")
                .joinpath("data/models.json")
                .read_text(encoding="utf-8")
            )
            table = {}
            for entry in json.loads(text)["models"]:
                info = _from_mapping(entry, "memlens/context/data/models.json")
                table[info.name] = info
            extra = os.environ.get("MEMLENS_CONTEXT_MODELS")
            if extra:
                for info in load_models_file(extra):
                    table[info.name] = info
            _table = table
        return _table


def register_model(
    name: str | ModelInfo,
    context_window: int | None = None,
    *,
    family: str = "unknown",
    encoding: str = "cl100k_base",
    max_output: int | None = None,
) -> ModelInfo:
    """Add or replace a model in the table (for this process)."""
    if isinstance(name, ModelInfo):
        info = name
    else:
        if context_window is None or int(context_window) <= 0:
            raise ConfigError(f"invalid context_window for model {name!r}: must be > 0")
        info = ModelInfo(name, int(context_window), family, encoding, max_output)
    table = _load_table()
    with _lock:
        table[info.name] = info
    return info


def known_models() -> list[ModelInfo]:
    """Every model in the table, sorted by name."""
    return sorted(_load_table().values(), key=lambda m: m.name)


def find_model(name: str) -> ModelInfo | None:
    """The table entry for ``name`` by longest prefix, or ``None``."""
    table = _load_table()
    key = name.strip().lower()
    if "/" in key:  # "anthropic/claude-..." or "openai/gpt-4o"
        key = key.rsplit("/", 1)[1]
    if key in table:
        return table[key]
    best: ModelInfo | None = None
    for entry_name, info in table.items():
        if key.startswith(entry_name.lower()) and (
            best is None or len(entry_name) > len(best.name)
        ):
            best = info
    return best


def get_model(name: str) -> ModelInfo:
    """Like :func:`find_model` but raises :class:`ConfigError` for an unknown model."""
    info = find_model(name)
    if info is None:
        sample = ", ".join(m.name for m in known_models()[:8])
        raise ConfigError(
            f"unknown model {name!r}: pass --budget, or add it to the model table "
            f"(MEMLENS_CONTEXT_MODELS or register_model); known: {sample}, ..."
        )
    return info


def _reset_for_tests() -> None:
    global _table
    with _lock:
        _table = None
