"""The same warmed-up service (a 500,000-entry table from ``setup()``), whose
requests each leave an audit record in a module-level list.

Issue #15's big-setup case with a real leak: the doctor must still find the list
that grows per step, not blame the table. Written, with its truth, before the
doctor ran on it.
"""

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "leak_setup_dict_500k.py#audit",
    "root": "AUDIT",
}

TABLE: dict[str, tuple[int, str]] = {}
AUDIT: list[dict[str, object]] = []


def setup() -> None:
    for i in range(500_000):
        TABLE[f"user-{i}"] = (i, f"name-{i % 977}")


def step(i: int) -> None:
    key = f"user-{(i * 7919) % 500_000}"
    uid, name = TABLE[key]
    AUDIT.append({"id": uid, "name": name, "step": i, "note": "x" * 200})  # leak-site: audit
