"""A named blinker signal per tenant id: blinker's default namespace keeps every one."""

import blinker

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_blinker_named_signals.py#signal",
    "root": "default_namespace",
}


def on_event(sender: object, **kw: object) -> None:
    pass


def step(i: int) -> None:
    sig = blinker.signal(f"tenant-{i}-updated")  # leak-site: signal
    sig.send(None)
