"""A shared requests.Session gets a new HTTPAdapter mounted per tenant host."""

import requests
from requests.adapters import HTTPAdapter

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_requests_mount_adapters.py#mount",
    "root": "http",
}

http = requests.Session()


def step(i: int) -> None:
    url = f"https://tenant-{i}.example.invalid/"
    http.mount(url, HTTPAdapter(max_retries=2))  # leak-site: mount
