"""Plain data objects the fake service passes around."""

from __future__ import annotations


class Request:
    def __init__(self, rid: int, body: str) -> None:
        self.rid = rid
        self.body = body


class Summary:
    def __init__(self, rid: int, text: str) -> None:
        self.rid = rid
        self.text = text


def make_request(i: int, size: int = 1000) -> Request:
    return Request(i, f"request-{i}-" + "x" * size)
