"""GC disabled at import; each job stores a bound method on itself (a cycle)."""

import gc

gc.disable()

EXPECTED = {
    "leak": True,
    "category": "gc_disabled_cycles",
    "site": "leak_gc_disabled_selfref.py#selfref",
    "root": "unreachable",
}


class Job:
    def __init__(self, i: int) -> None:
        self.data = "job data " + "j" * 500 + str(i)  # leak-site: selfref
        self.on_done = self.finish

    def finish(self) -> None:
        self.data = ""


def run(i: int) -> None:
    Job(i)


def step(i: int) -> None:
    run(i)


def teardown() -> None:
    gc.enable()
