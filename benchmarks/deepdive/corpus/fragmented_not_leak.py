"""A fragmented C heap that is not a leak: free 7 of every 8 small blocks.

160,000 blocks of 1 KiB (bytes objects this size come from malloc, not pymalloc) are
made in one go; then 7 of every 8 are dropped. Nothing grows after that: the live
data is 20,000 blocks (~20 MiB), while the allocator keeps the ~140 MiB between them.
"""

import time

blocks = [bytes(1024) for _ in range(160_000)]
kept = blocks[::8]
del blocks
time.sleep(0.3)  # a quiet moment, as a service between requests
print(len(kept))
