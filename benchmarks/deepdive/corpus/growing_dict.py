"""A growing dict that is a leak: every "request" adds 1 KiB that is never removed."""

import time

SEEN: dict[int, bytes] = {}


def handle(i: int) -> None:
    SEEN[i] = bytes(1024)  # the leak: nothing ever evicts


for i in range(60_000):
    handle(i)
    if i % 10_000 == 0:
        time.sleep(0.05)
print(len(SEEN))
