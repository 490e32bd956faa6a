"""Widgets register bound methods on a class-level observer list."""

EXPECTED = {
    "leak": True,
    "category": "listener",
    "site": "leak_observer_class.py#observer",
    "root": "observers",
}


class Theme:
    observers: list = []

    @classmethod
    def changed(cls) -> None:
        for cb in cls.observers[-2:]:
            cb()


class Widget:
    def __init__(self, i: int) -> None:
        self.pixels = [0] * 300  # leak-site: observer
        Theme.observers.append(self.redraw)

    def redraw(self) -> None:
        self.pixels[0] += 1


def render_page(i: int) -> None:
    Widget(i)
    Theme.changed()


def step(i: int) -> None:
    render_page(i)
