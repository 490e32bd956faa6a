"""lru_cache on a method keeps every PriceService (and its catalog) alive."""

from leakapp.pricing import price

EXPECTED = {
    "leak": True,
    "category": "cached_instances",
    "site": "leakapp/pricing.py#pricing",
    "root": "quote",
}


def step(i: int) -> None:
    price("eu", i)
