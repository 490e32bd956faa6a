"""A pydantic model with a mutable default list: pydantic copies it per instance."""

from pydantic import BaseModel

EXPECTED = {"leak": False}


class Cart(BaseModel):
    owner: str
    items: list[str] = []


def step(i: int) -> None:
    cart = Cart(owner=f"user-{i}")
    cart.items.append("sku-" + "x" * 100)
