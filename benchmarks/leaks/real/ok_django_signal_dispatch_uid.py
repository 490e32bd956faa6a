"""A receiver connected on every request with a fixed dispatch_uid: Django keeps one."""

from django.core.signals import request_finished

EXPECTED = {"leak": False}


def handle_request(i: int) -> None:
    scratch = [f"row-{i}-{k}" for k in range(20)]

    def cleanup(sender: object, **kwargs: object) -> None:
        scratch.clear()

    request_finished.connect(cleanup, weak=False, dispatch_uid="request-cleanup")


def step(i: int) -> None:
    handle_request(i)


def teardown() -> None:
    request_finished.disconnect(dispatch_uid="request-cleanup")
