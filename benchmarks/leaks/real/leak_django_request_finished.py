"""Per-request cleanup closures connected to Django's request_finished with weak=False."""

from django.core.signals import request_finished

EXPECTED = {
    "leak": True,
    "category": "listener",
    "site": "real/leak_django_request_finished.py#payload",
    "root": "request_finished",
}


def handle_request(i: int) -> None:
    scratch = [f"row-{i}-{k}" for k in range(20)]  # leak-site: payload

    def cleanup(sender: object, **kwargs: object) -> None:
        scratch.clear()

    request_finished.connect(cleanup, weak=False)


def step(i: int) -> None:
    handle_request(i)
