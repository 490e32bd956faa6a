"""An audit trail that keeps one record per call, beside a big LRU of cyclic documents.

The LRU (as in ``ok_cyclic_lru_evicts``) is bounded and evicts cycles that only the
garbage collector frees; the audit list is the leak.
"""

from collections import OrderedDict

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_beside_cyclic_lru.py#audit",
    "root": "_AUDIT",
}

_CAPACITY = 1500
_DOCS: OrderedDict[int, "_Document"] = OrderedDict()
_AUDIT: list[dict[str, object]] = []


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
    _AUDIT.append({"call": i, "docs": len(_DOCS), "note": "x" * 40})  # leak-site: audit
