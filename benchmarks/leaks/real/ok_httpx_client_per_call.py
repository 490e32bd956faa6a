"""An httpx.Client per call (mock transport, real request/response), closed on exit."""

import httpx

EXPECTED = {"leak": False}


def answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"path": request.url.path, "items": list(range(20))})


def step(i: int) -> None:
    with httpx.Client(
        base_url="http://svc.invalid", transport=httpx.MockTransport(answer)
    ) as client:
        client.get(f"/items/{i}", params={"q": str(i)}).json()
