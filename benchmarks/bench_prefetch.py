"""Predictive prefetching vs LRU alone vs no cache, on replayed access traces.

Five kinds of trace, replayed through the same hot cache over a real record store
(SQLite, values of ~2 KB each, every load a verified read):

- **agent**: generated assistant sessions. A session runs tasks drawn (Zipf) from a
  set of workflows; each workflow reads its memory items in order (user profile,
  project notes, the files and tools of that task), with noise: a random extra
  item 10 % of the time, a skipped step 5 % of the time.
- **repository**: a coding agent's accesses on a real code base (memlens's own
  ``src/`` and ``tests/``, whose structure was not written for this benchmark). A
  task on module M reads M, then the modules M imports (in the order its source
  imports them, from ``ast``), runs the test files that import M, and reads M again.
  Tasks are drawn (Zipf) over the modules, with the same noise as above. The
  sequence structure is the code base's own dependency structure.
- **context**: the tool calls (files read, commands run, searches) of a transcript
  made by the context profiler benchmark's generator (``benchmarks/context/
  generate.py``), in the order the assistant made them. That generator picks each
  turn's file, command and search at random, so this trace is the control: there is
  no sequence to learn, and prefetching should cost little there rather than help.
- **context-fit**: the tool calls of every session the context memory's quality
  benchmark runs (``benchmarks/context/fit_quality.py``: its three 500-turn quality
  sessions and its five random-budget sessions, from ``fit_sessions.py``), in order,
  one session after the other. Each turn reads a file, runs that area's tests and
  sometimes greps for a function the file defines; the area, file and function are
  drawn at random per turn. (The benchmark's ``ContextMemory`` itself reads nothing
  back, no ``expand``, ``cache_get`` or ``touch``: a fit is one pass, so the items an
  agent asks for are the only accesses there are to record.)

- **real-agent**: recorded, not generated. The files a real coding agent read,
  edited, wrote, ran, tested, searched or listed, in order, in 500 SWE-bench Verified
  tasks (mini-swe-agent 1.15.0 with Gemini 3 Pro, on 12 Python projects; see
  ``benchmarks/prefetch_traces/README.md`` for the source, licence and extractor).
  Each task is its own session (its own history); the tasks run one after another,
  in instance-id order, through one hot cache and one predictor, as one worker of a
  fleet would. The item is the file: reading and then editing it is two accesses of
  one item; a project's file is one item across that project's tasks, and a file a
  task created itself (its first access a write) belongs to that task alone.

Two bounds follow each trace. **ceiling**: every access but an item's first a hit
(a first access cannot be predicted by anything that learns from the trace).
**learnable**: an access is an LRU hit, or its item followed the same previous item
at least once before. A sequence model of any order, whose contexts end with the
previous item, gives an item that never followed it no weight, so ``learnable -
LRU`` roughly bounds what such a predictor can add (roughly: an item prefetched
earlier may still sit in the cache). On a dense random trace nearly every pair has
followed once, so this bound is loose there; on a sparse one it is tight.

The predictor learns online from the trace itself (no pre-training). Figures: hit
rate, prefetch precision (prefetched items used before eviction), wasted prefetch
loads, and time spent in loads on the access path (misses) — prefetch loads are
counted separately because an application would run them off that path.

    python benchmarks/bench_prefetch.py
    python benchmarks/bench_prefetch.py --capacity 32 --accesses 20000
    python benchmarks/bench_prefetch.py --traces real-agent --capacity 8
"""

from __future__ import annotations

import argparse
import ast
import gzip
import json
import random
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path

from memlens.context.shared.prefetch import AccessPredictor, Prefetcher
from memlens.store import open_record_store
from memlens.store.records import PutRequest, RecordStore

ROOT = Path(__file__).resolve().parents[1]


def agent_trace(accesses: int, seed: int = 3, workflows: int = 40, pool: int = 600) -> list[str]:
    """Generated assistant sessions (see the module docstring)."""
    rng = random.Random(seed)
    items = [f"item:{i}" for i in range(pool)]
    common = ["user:profile", "user:prefs", "project:notes"]
    flows = []
    for _ in range(workflows):
        steps = rng.sample(items, rng.randint(5, 10))
        flows.append([rng.choice(common), *steps])
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(workflows)]
    out: list[str] = []
    while len(out) < accesses:
        for step in rng.choices(flows, weights)[0]:
            if rng.random() < 0.05:
                continue
            out.append(step)
            if rng.random() < 0.10:
                out.append(rng.choice(items))
    return out[:accesses]


def module_graph(root: Path = ROOT) -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
    """memlens's modules, the memlens modules each imports (source order), and the
    test files that import each one."""
    src = root / "src"
    files = {}
    for path in sorted((src / "memlens").rglob("*.py")):
        name = ".".join(path.relative_to(src).with_suffix("").parts)
        files[name.removesuffix(".__init__")] = path
    imports: dict[str, list[str]] = {}
    for name, path in files.items():
        found: list[str] = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            for target in targets:
                if target in files and target != name and target not in found:
                    found.append(target)
        imports[name] = found
    tests: dict[str, list[str]] = {name: [] for name in files}
    for path in sorted((root / "tests").rglob("test_*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for name in files:
            if f"from {name} import" in text or f"import {name}\n" in text:
                tests[name].append(str(path.relative_to(root)))
    return sorted(files), imports, tests


def repository_trace(accesses: int, seed: int = 5) -> list[str]:
    """A coding agent's accesses on memlens's own code base (see the module docstring)."""
    rng = random.Random(seed)
    modules, imports, tests = module_graph()
    tasks = [m for m in modules if imports[m]]
    rng.shuffle(tasks)
    weights = [1.0 / (rank + 1) ** 1.1 for rank in range(len(tasks))]
    every_file = [f"file:{m}" for m in modules]
    out: list[str] = []
    while len(out) < accesses:
        module = rng.choices(tasks, weights)[0]
        steps = [
            f"task:{module}",
            f"file:{module}",
            *(f"file:{dep}" for dep in imports[module][:6]),
            *(f"test:{path}" for path in tests[module][:3]),
            f"file:{module}",
        ]
        for step in steps:
            if rng.random() < 0.05:
                continue
            out.append(step)
            if rng.random() < 0.10:
                out.append(rng.choice(every_file))
    return out[:accesses]


def context_trace(accesses: int) -> list[str]:
    """Tool calls, in order, from a transcript of the context benchmark's generator."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "context"))
    from generate import write_transcript  # type: ignore[import-not-found]

    out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        size = 2_000_000
        while len(out) < accesses and size < 256_000_000:
            write_transcript(path, size)
            out = []
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                content = (record.get("message") or {}).get("content")
                if not isinstance(content, list):
                    continue
                for block in content:
                    if isinstance(block, dict) and block.get("type") == "tool_use":
                        arg = next(iter((block.get("input") or {}).values()), "")
                        out.append(f"{block.get('name')}:{arg}")
            size *= 2
    return out[:accesses]


#: The sessions ``fit_quality.py`` runs by default: (seed, tool output size).
FIT_QUALITY_RUNS = [(seed, 1.0) for seed in (1, 2, 3)] + [(1000 + i, 0.1) for i in range(5)]


def fit_quality_trace(
    runs: list[tuple[int, float]] = FIT_QUALITY_RUNS, turns: int = 500
) -> list[str]:
    """Tool calls, in order, of the sessions ``fit_quality.py`` runs (its defaults)."""
    sys.path.insert(0, str(ROOT / "benchmarks" / "context"))
    from fit_sessions import generate  # type: ignore[import-not-found]

    out: list[str] = []
    for seed, size in runs:
        messages, _probes = generate(turns, seed=seed, size=size)
        for message in messages:
            for call in message.get("tool_calls") or []:
                args = json.loads(call["function"]["arguments"])
                out.append(f"{call['function']['name']}:{next(iter(args.values()), '')}")
    return out


#: The recorded agent trajectories (see ``benchmarks/prefetch_traces/README.md``).
REAL_AGENT_TRACES = ROOT / "benchmarks" / "prefetch_traces" / "mini-swe-agent-gemini-3-pro.jsonl.gz"


def real_agent_sessions(path: Path = REAL_AGENT_TRACES) -> list[tuple[str, list[str]]]:
    """``(task id, items accessed in order)`` of each recorded trajectory, by task id.

    An item is a file of the task's project (``project:path``: tasks on one project
    share its files, two projects share none), or, for a file the task created (its
    first access a write: the agent's scratch scripts), a file of that task only
    (``task:path``): a ``reproduce_issue.py`` of one task is not another's.
    """
    try:
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    except OSError as exc:
        raise SystemExit(f"{path}: cannot read the recorded traces ({exc})") from None
    out = []
    for line in lines:
        record = json.loads(line)
        task = record["id"]
        project = task.rsplit("-", 1)[0]
        owner: dict[str, str] = {}  # path -> the task or project it belongs to
        items = []
        for kind, access_path in record["accesses"]:
            if access_path not in owner:
                owner[access_path] = task if kind == "write" else project
            items.append(f"{owner[access_path]}:{access_path}")
        out.append((task, items))
    return sorted(out)


def real_agent_trace(path: Path = REAL_AGENT_TRACES) -> tuple[list[str], list[str]]:
    """The recorded sessions one after another: ``(keys, session of each key)``."""
    keys: list[str] = []
    sessions: list[str] = []
    for task, files in real_agent_sessions(path):
        keys += files
        sessions += [task] * len(files)
    return keys, sessions


def ceiling(trace: list[str]) -> float:
    """Hit rate if every access but an item's first were a hit (see the module doc)."""
    return (len(trace) - len(set(trace))) / len(trace) if trace else 0.0


def learnable(trace: list[str], capacity: int, sessions: list[str] | None = None) -> float:
    """Share of accesses that are an LRU hit or followed their predecessor before
    (the predecessor in the same session: a session's first access has none)."""
    lru: OrderedDict[str, None] = OrderedDict()
    follows: dict[str, set[str]] = {}
    hits = 0
    previous: str | None = None
    for i, key in enumerate(trace):
        if sessions is not None and i and sessions[i] != sessions[i - 1]:
            previous = None
        hits += key in lru or (previous is not None and key in follows.get(previous, ()))
        lru[key] = None
        lru.move_to_end(key)
        if len(lru) > capacity:
            lru.popitem(last=False)
        if previous is not None:
            follows.setdefault(previous, set()).add(key)
        previous = key
    return hits / len(trace) if trace else 0.0


@dataclass
class Row:
    policy: str
    hit_rate: float
    precision: float
    prefetch_loads: int
    wasted: int
    used: int
    demand_loads: int
    demand_seconds: float
    prefetch_seconds: float


def replay(
    trace: list[str],
    store: RecordStore,
    policy: str,
    capacity: int,
    threshold: float,
    sessions: list[str] | None = None,
    hits: list[bool] | None = None,
) -> Row:
    """Replay ``trace`` (``sessions[i]`` the session of access i, one session if None)
    through ``policy``; ``hits``, if given, receives whether each access hit."""
    timings = {"demand": 0.0, "prefetch": 0.0}

    def timed_get(key: Hashable, phase: str) -> object:
        started = time.perf_counter()
        record = store.get("trace", str(key))
        timings[phase] += time.perf_counter() - started
        return record.value if record else None

    if policy == "no cache":
        for key in trace:
            timed_get(key, "demand")
        return Row(policy, 0.0, 0.0, 0, 0, 0, len(trace), timings["demand"], 0.0)
    prefetcher = Prefetcher(
        lambda key: None,
        capacity=capacity,
        predictor=AccessPredictor(max_order=3),
        threshold=threshold,
        prefetch=policy != "LRU",
    )
    demand_loads = 0
    for i, key in enumerate(trace):
        miss = key not in prefetcher.cache
        demand_loads += miss
        if hits is not None:
            hits.append(not miss)
        loader = _loader_for_access(timed_get, miss)
        prefetcher.loader = loader
        prefetcher.access(sessions[i] if sessions else "s", key)
    stats = prefetcher.stats
    return Row(
        policy,
        stats.hit_rate,
        stats.precision,
        stats.prefetch_loads,
        stats.prefetch_wasted,
        stats.prefetch_used,
        demand_loads,
        timings["demand"],
        timings["prefetch"],
    )


def _loader_for_access(
    get: Callable[[Hashable, str], object], miss: bool
) -> Callable[[Hashable], object]:
    """On a miss the first load of the access is on its path; every other is a prefetch."""
    calls = [0]

    def load(key: Hashable) -> object:
        phase = "demand" if miss and calls[0] == 0 else "prefetch"
        calls[0] += 1
        return get(key, phase)

    return load


@dataclass
class Summary:
    """One trace family's figures for the closing table (and their sums)."""

    accesses: int = 0
    lru_hits: float = 0.0
    prefetch_hits: float = 0.0
    used: int = 0
    wasted: int = 0
    learnable_hits: float = 0.0

    def add(self, other: Summary) -> None:
        for name in ("accesses", "lru_hits", "prefetch_hits", "used", "wasted", "learnable_hits"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def line(self, name: str) -> str:
        n = self.accesses or 1
        lru, smart, able = self.lru_hits / n, self.prefetch_hits / n, self.learnable_hits / n
        settled = self.used + self.wasted
        precision = f"{100 * self.used / settled:8.1f}%" if settled else f"{'-':>9}"
        return (
            f"{name:13} {self.accesses:8d} {100 * lru:6.1f}% {100 * smart:13.1f}% "
            f"{100 * (smart - lru):+6.1f} {precision} {100 * (able - lru):+15.1f}"
        )


TRACES: dict[str, Callable[[int], tuple[list[str], list[str] | None]]] = {
    "agent": lambda n: (agent_trace(n), None),
    "repository": lambda n: (repository_trace(n), None),
    "context": lambda n: (context_trace(n), None),
    "context-fit": lambda n: (fit_quality_trace(), None),
    "real-agent": lambda n: real_agent_trace(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accesses", type=int, default=20000)
    parser.add_argument("--capacity", type=int, default=32)
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument(
        "--traces", default=",".join(TRACES), help="comma-separated, of: " + ", ".join(TRACES)
    )
    args = parser.parse_args()
    wanted = [name for name in args.traces.split(",") if name]
    unknown = [name for name in wanted if name not in TRACES]
    if unknown:
        parser.error(f"unknown trace {unknown[0]!r}: expected one of {', '.join(TRACES)}")
    traces = {name: TRACES[name](args.accesses) for name in wanted}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_record_store(f"sqlite:///{Path(tmp) / 'trace.db'}")
        keys = sorted({k for trace, _sessions in traces.values() for k in trace})
        for start in range(0, len(keys), 500):
            store.put_many(
                "trace",
                [PutRequest(k, {"k": k, "body": "z" * 2000}) for k in keys[start : start + 500]],
            )
        print(
            f"hot cache of {args.capacity} items, prefetch above {args.threshold}, "
            f"{args.accesses} accesses per generated trace, SQLite record store"
        )
        header = (
            f"{'trace':11} {'policy':15} {'hit rate':>8} {'vs LRU':>7} {'precision':>9} "
            f"{'prefetched':>10} {'wasted':>7} {'demand loads':>12} {'demand ms':>10} "
            f"{'prefetch ms':>11}"
        )
        print(header)
        summaries: dict[str, Summary] = {}
        for name, (trace, sessions) in traces.items():
            lru_hits: list[bool] = []
            smart_hits: list[bool] = []
            rows = [
                replay(trace, store, "no cache", args.capacity, args.threshold, sessions),
                replay(trace, store, "LRU", args.capacity, args.threshold, sessions, lru_hits),
                replay(
                    trace,
                    store,
                    "LRU + prefetch",
                    args.capacity,
                    args.threshold,
                    sessions,
                    smart_hits,
                ),
            ]
            lru = rows[1].hit_rate
            for row in rows:
                gain = f"{100 * (row.hit_rate - lru):+.1f}" if row.policy != "no cache" else ""
                print(
                    f"{name:11} {row.policy:15} {100 * row.hit_rate:7.1f}% {gain:>7} "
                    f"{100 * row.precision:8.1f}% {row.prefetch_loads:10d} {row.wasted:7d} "
                    f"{row.demand_loads:12d} {1000 * row.demand_seconds:10.0f} "
                    f"{1000 * row.prefetch_seconds:11.0f}"
                )
            top, able = ceiling(trace), learnable(trace, args.capacity, sessions)
            print(
                f"{'':11} ({len(trace)} accesses, {len(set(trace))} distinct items"
                + (f", {len(set(sessions))} sessions" if sessions else "")
                + f"; ceiling {100 * top:.1f}% ({100 * (top - lru):+.1f} over LRU), learnable "
                f"{100 * able:.1f}% ({100 * (able - lru):+.1f} over LRU))"
            )
            if sessions:
                _print_by_project(sessions, lru_hits, smart_hits)
            smart = rows[2]
            summaries[name] = Summary(
                len(trace),
                lru * len(trace),
                smart.hit_rate * len(trace),
                smart.used,
                smart.wasted,
                able * len(trace),
            )
        store.close()
    print(
        f"\n{'family':13} {'accesses':>8} {'LRU':>7} {'LRU + prefetch':>14} {'gain':>6} "
        f"{'precision':>9} {'learnable-LRU':>15}"
    )
    total = Summary()
    for name, summary in summaries.items():
        print(summary.line(name))
        total.add(summary)
    if len(summaries) > 1:
        print(total.line("all"))


def _print_by_project(sessions: list[str], lru: list[bool], smart: list[bool]) -> None:
    """Hit rates per project of a recorded trace (task ids are ``owner__project-N``)."""
    tally: dict[str, list[int]] = {}  # project -> [accesses, LRU hits, prefetch hits]
    tasks: dict[str, set[str]] = {}
    for session, lru_hit, smart_hit in zip(sessions, lru, smart, strict=True):
        project = session.rsplit("-", 1)[0]
        counts = tally.setdefault(project, [0, 0, 0])
        counts[0] += 1
        counts[1] += lru_hit
        counts[2] += smart_hit
        tasks.setdefault(project, set()).add(session)
    for project, (n, lru_hits, smart_hits) in sorted(tally.items()):
        print(
            f"{'':11}   {project:30} {len(tasks[project]):4d} tasks {n:6d} accesses: LRU "
            f"{100 * lru_hits / n:5.1f}%, with prefetch {100 * smart_hits / n:5.1f}% "
            f"({100 * (smart_hits - lru_hits) / n:+.1f})"
        )


if __name__ == "__main__":
    main()
