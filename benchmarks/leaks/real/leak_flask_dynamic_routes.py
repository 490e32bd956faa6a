"""A Flask app adds a URL rule per uploaded file instead of one parametrised route."""

from flask import Flask
from werkzeug.routing import Rule

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_flask_dynamic_routes.py#rule",
    "root": "app",
}

app = Flask("uploads")


def serve(name: str) -> str:
    return name


def step(i: int) -> None:
    app.url_map.add(Rule(f"/files/upload-{i}.bin", endpoint=f"file-{i}"))  # leak-site: rule
