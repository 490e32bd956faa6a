"""Middleware appends a response hook to a shared httpx.Client on every request."""

import httpx

EXPECTED = {
    "leak": True,
    "category": "listener",
    "site": "real/leak_httpx_event_hooks.py#context",
    "root": "client",
}

client = httpx.Client(base_url="http://service.invalid")


def traced(i: int) -> None:
    context = {"trace": f"trace-{i:08d}", "spans": list(range(30))}  # leak-site: context

    def log_response(response: httpx.Response) -> None:
        context["status"] = response.status_code

    client.event_hooks["response"].append(log_response)


def step(i: int) -> None:
    traced(i)
