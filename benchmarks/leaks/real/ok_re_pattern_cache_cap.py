"""A distinct regular expression per call: re's own pattern cache is bounded."""

import re

EXPECTED = {"leak": False}


def step(i: int) -> None:
    re.compile(rf"^order-{i}-(\d+)-(?P<sku>[a-z]+)$").match(f"order-{i}-12-abc")
