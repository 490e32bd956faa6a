"""Real requests through Flask and Werkzeug's test client, one URL per item id."""

from flask import Flask, jsonify

EXPECTED = {"leak": False}

app = Flask("items")


@app.get("/items/<int:item_id>")
def item(item_id: int):  # type: ignore[no-untyped-def]
    return jsonify(id=item_id, name=f"item {item_id}", tags=["a", "b"])


client = app.test_client()


def step(i: int) -> None:
    response = client.get(f"/items/{i}")
    response.get_json()
    response.close()
