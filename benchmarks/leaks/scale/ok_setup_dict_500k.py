"""A service warmed up with a 500,000-entry lookup table, then requests that keep nothing.

Issue #15: a doctor target whose ``setup()`` builds a big dict used to overrun its
budget with no checkpoint taken. The table is built once, before the checkpoints;
the steps only read it. Written, with its truth, before the doctor ran on it.
"""

EXPECTED = {"leak": False}

TABLE: dict[str, tuple[int, str]] = {}


def setup() -> None:
    for i in range(500_000):
        TABLE[f"user-{i}"] = (i, f"name-{i % 977}")


def step(i: int) -> None:
    key = f"user-{(i * 7919) % 500_000}"
    uid, name = TABLE[key]
    reply = {"id": uid, "name": name, "tags": [name] * 8}
    assert len(reply["tags"]) == 8
