"""Validating and dumping nested payloads with pydantic v2 models."""

from pydantic import BaseModel, TypeAdapter

EXPECTED = {"leak": False}


class Line(BaseModel):
    sku: str
    qty: int


class Order(BaseModel):
    id: int
    lines: list[Line]


orders = TypeAdapter(list[Order])


def step(i: int) -> None:
    raw = [{"id": i, "lines": [{"sku": f"s{k}", "qty": k} for k in range(10)]} for _ in range(3)]
    orders.dump_python(orders.validate_python(raw))
