"""A class is generated per request and registered by name: type objects pile up."""

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_dynamic_classes.py#classes",
    "root": "_models",
}

_models: dict = {}


def _model_for(schema_id: int) -> type:
    return type(f"Model{schema_id}", (object,), {"schema": schema_id})  # leak-site: classes


def step(i: int) -> None:
    _models[f"schema-{i}"] = _model_for(i)
