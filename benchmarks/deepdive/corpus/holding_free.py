"""An allocator holding free memory: a burst of 1 KiB blocks is freed in full.

One block made after the burst stays alive, so the heap's top cannot shrink by
itself; the ~100 MiB below it is one free region that malloc_trim(0) can return.
"""

import time

burst = [bytes(1024) for _ in range(100_000)]
pin = bytes(1024)  # allocated above the burst: keeps the heap from shrinking
del burst
time.sleep(0.3)
print(len(pin))
