"""Parse trees with parent pointers: cycles the collector must free."""

from __future__ import annotations


class Node:
    def __init__(self, parent: Node | None, label: str) -> None:
        self.parent = parent
        self.children: list[Node] = []
        self.label = label
        if parent is not None:
            parent.children.append(self)


def build_tree(rid: int) -> int:
    root = Node(None, f"root-{rid}" + "-" * 400)  # leak-site: tree
    for k in range(3):
        Node(root, f"child-{k}")
    return len(root.children)
