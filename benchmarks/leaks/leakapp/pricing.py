"""lru_cache on a method: every PriceService instance stays cached."""

from __future__ import annotations

import functools


class PriceService:
    def __init__(self, region: str) -> None:
        self.region = region
        self.catalog = [float(i) for i in range(100)]  # leak-site: pricing

    @functools.cache  # noqa: B019 - the bug on purpose
    def quote(self, sku: int) -> float:
        return self.catalog[sku % 100] * 1.2


def price(region: str, sku: int) -> float:
    return PriceService(region).quote(sku)
