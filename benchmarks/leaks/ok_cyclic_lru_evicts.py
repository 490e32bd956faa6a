"""An LRU of parsed documents whose nodes point back at their document (cycles).

Ten documents a call, at most 1,500 kept: once full, every call evicts ten, and
each evicted document is a cycle only the garbage collector frees. The cache is
far bigger than the interpreter's start heap (~30 objects per document).
"""

from collections import OrderedDict

EXPECTED = {"leak": False}

_CAPACITY = 1500
_DOCS: OrderedDict[int, "_Document"] = OrderedDict()


class _Node:
    def __init__(self, doc: "_Document", k: int) -> None:
        self.doc = doc
        self.k = k


class _Document:
    def __init__(self, key: int) -> None:
        self.key = key
        self.nodes = [_Node(self, k) for k in range(24)]


def _remember(key: int) -> None:
    _DOCS[key] = _Document(key)
    _DOCS.move_to_end(key)
    while len(_DOCS) > _CAPACITY:
        _DOCS.popitem(last=False)


def step(i: int) -> None:
    for j in range(10):
        _remember(i * 10 + j)
