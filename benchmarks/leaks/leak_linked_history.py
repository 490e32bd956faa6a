"""Undo history as a linked chain of snapshots: no container grows, the chain does."""

EXPECTED = {
    "leak": True,
    "category": "other",
    "site": "leak_linked_history.py#chain",
    "root": "editor",
}


class Snapshot:
    __slots__ = ("text", "previous")

    def __init__(self, text: str, previous: "Snapshot | None") -> None:
        self.text = text
        self.previous = previous


class Editor:
    def __init__(self) -> None:
        self.head: Snapshot | None = None

    def edit(self, i: int) -> None:
        text = f"revision {i}: " + "e" * 800  # leak-site: chain
        self.head = Snapshot(text, self.head)


editor = Editor()


def step(i: int) -> None:
    editor.edit(i)
