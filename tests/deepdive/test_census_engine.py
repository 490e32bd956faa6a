"""The census's engines against independent answers and known heaps.

Dominators are checked against networkx's on the very graph the C engine walked,
sizes against ``sys.getsizeof`` for every node, and both engines must give the known
retained sizes and paths of a heap built for the purpose.
Each check runs in a fresh interpreter, so that the heap is small and known.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from memlens.heap.native_ext import load_extension

needs_c = pytest.mark.skipif(load_extension("_census") is None, reason="memlens._census not built")


def _run(script: str, **env: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip()


_DOMINATORS = """
import gc, random, sys
import networkx as nx
from memlens import _census


def main(keep):  # no new globals once the census is taken: __main__'s dict stays put
    objs = gc.get_objects()
    c = _census.Census(objs, [id(objs)], [sys.modules["__main__"]])
    n = len(c) + 1
    sizes = [i for i in range(1, n) if c.size(i) != sys.getsizeof(c.node(i))]
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for i in range(n):
        g.add_edges_from((i, j) for j in c.successors(i))
    dom = nx.immediate_dominators(g, 0)
    wrong = [i for i in range(1, n) if dom[i] != c.idom(i)]
    preds = [i for i in range(1, n) if set(c.predecessors(i)) != set(g.predecessors(i))]
    # what the chain's head retains: every link and its string, nothing else
    head = c.index(keep[1])
    links, x = 0, keep[1]
    while x is not None:
        links += sys.getsizeof(x) + sys.getsizeof(x[1])
        x = x[0]
    print(n > 60_000, len(wrong), len(sizes), len(preds), c.retained(head) == links)


random.seed(7)
nodes = [[] for _ in range(2_000)]
for l in nodes:  # a random graph with cycles and shared children
    for _ in range(random.randint(0, 3)):
        l.append(random.choice(nodes))
chain = None
for i in range(30_000):  # deep enough that a recursive walk would overflow
    chain = [chain, str(i)]
main([nodes[:30], chain])
"""


@needs_c
def test_dominators_sizes_and_referrers_match_independent_answers() -> None:
    pytest.importorskip("networkx")
    assert _run(_DOMINATORS) == "True 0 0 0 True"


_KNOWN = """
import json
from memlens.heap.objects import census_self


class Holder:
    def __init__(self):
        self.payload = [bytes(1000) for _ in range(2_000)]


holder = Holder()
shared = [bytes(5000) for _ in range(50)]
a = {"s": shared}
b = {"s": shared}


def running():
    only_here = [bytes(3000) for _ in range(300)]  # held by a running frame's local
    return census_self(top_objects=40)


data = running()
rows = [
    (r["description"], r["retained"], r["path"])
    for r in data["largest"]
    if r["description"] in ("__main__.Holder object", "list of 50 items", "list of 300 items")
]
# `shared` is held by a and b: neither dict retains it, so it is not charged to them
unshared = not any(
    r["description"] == "dict of 1 items" and r["retained"] > 50 * 5_033 for r in data["largest"]
)
sane = data["objects"] > 10_000 and data["types"][0]["bytes"] > 0 and unshared
print(json.dumps({"engine": data["engine"], "rows": sorted(rows), "sane": sane}))
"""


def test_both_engines_give_the_same_answer_on_a_known_heap() -> None:
    import json

    answers = {}
    for env in ({}, {"MEMLENS_NO_EXTENSIONS": "1"}):
        out = json.loads(_run(_KNOWN, **env))
        answers[out["engine"]] = out["rows"]
        assert out["sane"], out
    expected = {"python"} | ({"c"} if load_extension("_census") is not None else set())
    assert set(answers) == expected
    rows = {desc: (retained, path) for desc, retained, path in answers["python"]}
    # the local of a running function is reached through its frame, not "held from C"
    assert rows["list of 300 items"][1] == ["thread MainThread frame running()", "local only_here"]
    assert rows["list of 300 items"][0] >= 300 * 3033
    assert rows["__main__.Holder object"][1] == ["module __main__", ".holder"]
    # 2,000 x bytes(1000) (1,033 B each) + the list: all freed with the holder
    assert 2_000 * 1_033 <= rows["__main__.Holder object"][0] < 2_000 * 1_033 + 40_000
    assert rows["list of 50 items"][0] >= 50 * 5_033
    assert rows["list of 50 items"][1][0] == "module __main__"
    if "c" in answers:
        assert answers["c"] == answers["python"]


_RELEASED = """
import gc, weakref
from memlens.heap.objects import census_self


class Big:
    pass


def loop():
    obj = Big()
    ref = weakref.ref(obj)
    census_self(top_objects=3)  # reads this frame's locals
    obj = None  # the function drops it: nothing of the census may keep it alive
    gc.collect()
    return ref() is None


print(loop())
"""


@pytest.mark.parametrize("env", [{}, {"MEMLENS_NO_EXTENSIONS": "1"}], ids=["c", "python"])
def test_reading_a_running_frames_locals_keeps_nothing_alive(env: dict[str, str]) -> None:
    assert _run(_RELEASED, **env) == "True"


_TRACED = """
import gc, tracemalloc
from memlens import _census
from memlens.heap.census import census

data = [{"k": str(i)} for i in range(100_000)]
tracemalloc.start(25)
gc.collect()
before = tracemalloc.get_traced_memory()[0]
tracemalloc.reset_peak()
out = census(accel=_census)
peak = tracemalloc.get_traced_memory()[1] - before
print(out["engine"], out["objects"] > 200_000, peak < 2 * 1024 * 1024, peak)
"""


@needs_c
def test_the_c_census_does_not_show_in_the_users_tracemalloc() -> None:
    # Its graph (tens of MB here) is malloc'd, not PyMem: the user's own snapshot of
    # a traced run is not polluted by the census, and tracing does not slow it down.
    engine, many, small, peak = _run(_TRACED).split()
    assert (engine, many, small) == ("c", "True", "True"), peak


def test_the_attach_path_passes_the_c_engine_only_to_the_same_python() -> None:
    from memlens.heap.objects import accelerator_for

    here = (sys.version_info.major, sys.version_info.minor)
    other = (here[0], here[1] + 1)
    assert accelerator_for(other) is None and accelerator_for(None) is None
    assert accelerator_for((3, 0)) is None
    path = accelerator_for(here)
    if load_extension("_census") is None:
        assert path is None
    else:
        assert path is not None and path.endswith(".so")
