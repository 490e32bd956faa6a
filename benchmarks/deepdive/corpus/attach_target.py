"""A long-running process to attach to, with a known heap.

- ``CACHE``: 20,000 entries of 1,000-character strings, about 20 MiB retained, the
  largest object reachable from a module;
- ``registry.records``: a list of 5,000 small dicts held by an instance;
- ``Session`` objects: 3,000 instances with a ``__dict__`` each.

It prints "ready" and then idles as a service would between requests, until killed
(or until the file named by its first argument disappears).
"""

import os
import sys
import time


class Registry:
    def __init__(self) -> None:
        self.records = [{"id": i, "name": f"user{i}", "active": True} for i in range(5_000)]


class Session:
    def __init__(self, i: int) -> None:
        self.user = f"user{i}"
        self.created = float(i)
        self.token = i


CACHE = {f"key{i}": ("v" * 999) + str(i % 10) for i in range(20_000)}
registry = Registry()
sessions = [Session(i) for i in range(3_000)]

print("ready", os.getpid(), flush=True)
keepalive = sys.argv[1] if len(sys.argv) > 1 else None
while keepalive is None or os.path.exists(keepalive):
    time.sleep(0.05)
