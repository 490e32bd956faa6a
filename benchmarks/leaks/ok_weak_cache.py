"""A WeakValueDictionary cache: entries vanish when the objects die."""

import weakref

EXPECTED = {"leak": False}


class Document:
    def __init__(self, i: int) -> None:
        self.text = "d" * 800 + str(i)


_cache: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def step(i: int) -> None:
    doc = Document(i)
    _cache[i] = doc
    del doc
