"""Describe an unreachable reference cycle through a leaked object (GC disabled)."""

from __future__ import annotations

import collections
import gc
from typing import Any

from memlens.heap.doctor.checkpoints import type_name
from memlens.heap.doctor.diagnosis import Hop


def cycle_hops(objs: list[Any]) -> list[Hop]:
    """Describe one reference cycle through a sample: A → .attr → B → … → A."""
    from memlens.heap.doctor.retention import hop_label

    for start in objs:
        prev: dict[int, Any] = {id(start): None}
        queue = collections.deque([start])
        while queue and len(prev) < 2000:
            obj = queue.popleft()
            for ref in gc.get_referents(obj):
                if ref is start:
                    chain = [obj]
                    while prev[id(chain[-1])] is not None:
                        chain.append(prev[id(chain[-1])])
                    chain.reverse()  # start … obj
                    hops = [
                        Hop(
                            label=f"unreachable cycle: {type_name(start).rsplit('.', 1)[-1]}",
                            type_name=type_name(start),
                        )
                    ]
                    for a, b in zip(chain, chain[1:] + [start]):
                        hops.append(Hop(label=hop_label(a, b), type_name=type_name(b)))
                    return hops
                if gc.is_tracked(ref) and id(ref) not in prev and not isinstance(ref, type):
                    prev[id(ref)] = obj
                    queue.append(ref)
    return []
