"""A leak several attributes deep in an application object graph."""

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_deep_attribute_chain.py#deep",
    "root": "app",
}


class Caches:
    def __init__(self) -> None:
        self.by_name: dict = {"users": {}, "orders": {}}


class State:
    def __init__(self) -> None:
        self.caches = Caches()


class App:
    def __init__(self) -> None:
        self.state = State()


app = App()


def _load_user(i: int) -> dict:
    return {"id": i, "name": f"user {i}", "bio": "b" * 600 + str(i)}  # leak-site: deep


def step(i: int) -> None:
    app.state.caches.by_name["users"][i] = _load_user(i)
