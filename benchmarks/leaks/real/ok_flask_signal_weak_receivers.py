"""Per-request closures connected to Flask's request_finished (blinker, weak by default)."""

import flask

EXPECTED = {"leak": False}

app = flask.Flask("weak")


def handle_request(i: int) -> None:
    scratch = [f"row-{i}-{k}" for k in range(20)]

    def cleanup(sender: object, **kwargs: object) -> None:
        scratch.clear()

    flask.request_finished.connect(cleanup, app)


def step(i: int) -> None:
    handle_request(i)
