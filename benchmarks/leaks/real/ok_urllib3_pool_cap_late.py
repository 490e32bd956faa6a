"""urllib3.PoolManager with num_pools=300: one pool per host until the cap, then LRU."""

import urllib3

EXPECTED = {"leak": False}

pools = urllib3.PoolManager(num_pools=300)


def step(i: int) -> None:
    pools.connection_from_host(f"shard-{i % 5000}.example.invalid", port=80, scheme="http")
