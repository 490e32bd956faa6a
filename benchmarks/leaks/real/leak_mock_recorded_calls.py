"""A MagicMock left in place of the mailer outside the tests: it records every call
(call_args_list, mock_calls, method_calls), and with it every payload sent."""

from unittest import mock

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_mock_recorded_calls.py#payload",
    "root": "mailer",
}

mailer = mock.MagicMock(name="mailer")


def notify(i: int) -> None:
    body = "Your order has shipped. " * 12  # one constant, folded at compile time
    payload = {"to": f"user-{i}@example.invalid", "body": body, "id": i}  # leak-site: payload
    mailer.send(payload)


def step(i: int) -> None:
    notify(i)
