"""Parsed payloads are kept for 'later inspection' and never dropped."""

from __future__ import annotations

import json

_inspected: list[dict[str, object]] = []


def _parse(raw: str) -> dict[str, object]:
    return json.loads(raw)  # leak-site: json


def inspect_payload(raw: str) -> int:
    doc = _parse(raw)
    _inspected.append(doc)
    return len(doc)
