"""A large-bounded lru_cache on a method: instances pile up long before the bound."""

import functools

EXPECTED = {
    "leak": True,
    "category": "cached_instances",
    "site": "leak_lru_method_bounded.py#report",
    "root": "summary",
}


class Report:
    def __init__(self, i: int) -> None:
        self.rows = [f"row {k}" for k in range(20)]  # leak-site: report
        self.i = i

    @functools.lru_cache(maxsize=100_000)  # noqa: B019 - the bug on purpose
    def summary(self) -> str:
        return self.rows[0]


def build_report(i: int) -> str:
    return Report(i).summary()


def step(i: int) -> None:
    build_report(i)
