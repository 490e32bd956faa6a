"""Evaluate the leak doctor against baselines on the scenario corpus.

Every scenario file here defines ``step(i)`` (optionally ``setup``/``teardown``) and
an ``EXPECTED`` dict: whether it leaks and, if so, the category, the allocation
site (``file#tag``: the line marked ``# leak-site: tag``) and the root's name.

Each (tool, scenario) pair runs in a fresh subprocess. Tools:

- ``memlens``     memlens.heap.doctor with its defaults;
- ``memlens-sampled`` the same on the sampling tracer (``sample=True``: the doctor's
                  default interval) instead of tracemalloc (needs memlens._sampler);
- ``tracemalloc`` snapshot diff over 100 steps after 5 warm-up steps; the top line
                  by growth is the site; a leak when it grew ≥ 16 B per step;
- ``objgraph``    objgraph.growth() over 100 steps (it collects garbage first); a
                  leak when a type gained ≥ 50 objects; the root is the module
                  global that find_backref_chain() reaches from the newest object;
- ``memray``      memray.Tracker over 100 steps; the biggest still-alive allocation
                  site (innermost frame) is the site; a leak when it holds ≥ 16 B
                  per step (skipped if memray is not installed).

There are two corpora, scored separately: ``synthetic`` (the files next to this
script, most leaks hidden in the small fake service ``leakapp/``) and ``real``
(``real/``: leaks and look-alikes that live in real PyPI libraries). Each case runs
``--runs`` times (default 3) per tool; a case is *flaky* when its verdict differs
between runs. Accuracy is scored on the first run; the median is over all runs.

Usage: python benchmarks/leaks/evaluate.py [--corpus synthetic,real] [--tools memlens,...]
       [--runs 3] [-k SUBSTR] [-j JOBS] [-v] [--json results.json]
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = ("memlens", "memlens-sampled", "tracemalloc", "objgraph", "memray")
CORPORA = {"synthetic": HERE, "real": os.path.join(HERE, "real")}
BASELINE_STEPS = 100
BASELINE_WARMUP = 5


# -- corpus --------------------------------------------------------------------------
def scenarios(pattern: str = "", corpus: str = "synthetic") -> list[str]:
    folder = CORPORA[corpus]
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py") and name.startswith(("leak_", "ok_")) and pattern in name:
            out.append(os.path.join(folder, name))
    return out


def expected(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "EXPECTED" for t in node.targets
        ):
            return dict(ast.literal_eval(node.value))
    raise SystemExit(f"{path}: no EXPECTED")


def resolve_site(spec: str) -> tuple[str, int]:
    rel, _, tag = spec.partition("#")
    path = os.path.join(HERE, rel)
    marker = f"# leak-site: {tag}"
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.rstrip().endswith(marker):
                return os.path.realpath(path), lineno
    raise SystemExit(f"marker {marker!r} not found in {path}")


def same_site(reported: str | None, want: tuple[str, int]) -> bool:
    if not reported or ":" not in reported:
        return False
    file, _, line = reported.rpartition(":")
    if not line.isdigit():
        return False
    path = os.path.realpath(file if os.path.isabs(file) else os.path.join(HERE, file))
    return path == want[0] and int(line) == want[1]


# -- tools (run inside the per-case subprocess) ----------------------------------------
def _load(path: str) -> Any:
    from memlens.heap.doctor.targets import load

    return load(path)


def run_memlens(path: str, sample: bool = False) -> dict[str, Any]:
    from memlens.heap.doctor import doctor

    target = _load(path)
    diag = doctor(
        target.step,
        setup=target.setup,
        teardown=target.teardown,
        name=target.name,
        user_roots=target.user_roots,
        sample=sample or None,
    )
    first = diag.findings[0] if diag.findings else None
    return {
        "leak": diag.verdict == "leak",
        "verdict": diag.verdict,
        "site": first.site if first else None,
        "root": first.root if first else None,
        "category": first.category if first else None,
        "library": first.library if first else None,
        "public_call": first.public_call if first else None,
        "iterations": diag.iterations,
    }


def _baseline_prologue(path: str) -> Any:
    target = _load(path)
    if target.setup:
        target.setup()
    for i in range(BASELINE_WARMUP):
        target.step(i)
    return target


def run_tracemalloc(path: str) -> dict[str, Any]:
    import tracemalloc

    tracemalloc.start(25)
    target = _baseline_prologue(path)
    before = tracemalloc.take_snapshot()
    for i in range(BASELINE_WARMUP, BASELINE_WARMUP + BASELINE_STEPS):
        target.step(i)
    after = tracemalloc.take_snapshot()
    filters = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    stats = after.filter_traces(filters).compare_to(before.filter_traces(filters), "lineno")
    top = max(stats, key=lambda s: s.size_diff, default=None)
    if target.teardown:
        target.teardown()
    leak = bool(top and top.size_diff >= 16 * BASELINE_STEPS)
    site = f"{top.traceback[0].filename}:{top.traceback[0].lineno}" if leak and top else None
    return {"leak": leak, "site": site, "root": None, "category": None}


def run_objgraph(path: str) -> dict[str, Any]:
    import objgraph

    target = _baseline_prologue(path)
    objgraph.growth(limit=None, shortnames=False)
    for i in range(BASELINE_WARMUP, BASELINE_WARMUP + BASELINE_STEPS):
        target.step(i)
    grown = objgraph.growth(limit=10, shortnames=False)
    top = grown[0] if grown else None
    leak = bool(top and top[2] >= BASELINE_STEPS // 2)
    root = None
    if leak and top:
        objs = objgraph.by_type(top[0])
        if objs:
            chain = objgraph.find_backref_chain(objs[-1], objgraph.is_proper_module, max_depth=20)
            root = _objgraph_root(chain)
    if target.teardown:
        target.teardown()
    return {
        "leak": leak,
        "site": None,
        "root": root,
        "category": None,
        "type": top[0] if top else None,
    }


def _objgraph_root(chain: list[Any]) -> str | None:
    import types

    if not chain or not isinstance(chain[0], types.ModuleType):
        return None
    module = chain[0]
    text = module.__name__
    if len(chain) > 2 and chain[1] is vars(module):
        for key, value in vars(module).items():
            if value is chain[2]:
                text += f".{key}"
                break
    return text


def run_memray(path: str) -> dict[str, Any]:
    import memray

    target = _baseline_prologue(path)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "capture.bin")
        with memray.Tracker(out, trace_python_allocators=True):
            for i in range(BASELINE_WARMUP, BASELINE_WARMUP + BASELINE_STEPS):
                target.step(i)
        reader = memray.FileReader(out)
        by_site: dict[tuple[str, int], int] = {}
        for rec in reader.get_leaked_allocation_records(merge_threads=True):
            stack = rec.stack_trace()
            if not stack:
                continue
            _fn, filename, lineno = stack[0]
            by_site[(filename, lineno)] = by_site.get((filename, lineno), 0) + rec.size
        reader.close()
    if target.teardown:
        target.teardown()
    top = max(by_site.items(), key=lambda kv: kv[1], default=None)
    leak = bool(top and top[1] >= 16 * BASELINE_STEPS)
    site = f"{top[0][0]}:{top[0][1]}" if leak and top else None
    return {"leak": leak, "site": site, "root": None, "category": None}


def run_memlens_sampled(path: str) -> dict[str, Any]:
    return run_memlens(path, sample=True)


RUNNERS = {
    "memlens": run_memlens,
    "memlens-sampled": run_memlens_sampled,
    "tracemalloc": run_tracemalloc,
    "objgraph": run_objgraph,
    "memray": run_memray,
}


def available(tool: str) -> bool:
    if tool == "memray":
        try:
            import memray  # noqa: F401
        except ImportError:
            return False
    if tool == "memlens-sampled":
        from memlens.heap.native_ext import load_extension

        return load_extension("_sampler") is not None
    return True


# -- driver ----------------------------------------------------------------------------
def run_case(tool: str, path: str, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", tool, path],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=HERE,
        )
    except subprocess.TimeoutExpired:
        return {"leak": False, "error": "timeout", "seconds": timeout}
    seconds = time.perf_counter() - started
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        result = json.loads(line)
    except json.JSONDecodeError:
        err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        result = {"leak": False, "error": err}
    result["seconds"] = seconds
    return result


def score(
    rows: list[tuple[dict[str, Any], dict[str, Any]]],
    runs: list[list[dict[str, Any]]] | None = None,
) -> dict[str, float]:
    """Accuracy over the first run of each case; flakiness and seconds over all runs."""
    tp = sum(1 for exp, got in rows if exp["leak"] and got.get("leak"))
    fp = sum(1 for exp, got in rows if not exp["leak"] and got.get("leak"))
    fn = sum(1 for exp, got in rows if exp["leak"] and not got.get("leak"))
    leaks = [(exp, got) for exp, got in rows if exp["leak"]]
    site = sum(1 for exp, got in leaks if same_site(got.get("site"), resolve_site(exp["site"])))
    root = sum(1 for exp, got in leaks if got.get("root") and exp["root"] in str(got.get("root")))
    cat = sum(1 for exp, got in leaks if got.get("category") == exp["category"])
    n = max(1, len(leaks))
    runs = runs or [[got] for _, got in rows]
    flaky = sum(1 for case in runs if len({bool(r.get("leak")) for r in case}) > 1)
    seconds = [r["seconds"] for case in runs for r in case]
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "site": site / n,
        "root": root / n,
        "category": cat / n,
        "flaky": flaky,
        "median_s": statistics.median(seconds) if seconds else 0.0,
        "max_s": max(seconds) if seconds else 0.0,
    }


def _line(tool: str, path: str, exp: dict[str, Any], got: dict[str, Any], flaky: bool) -> str:
    ok = "ok " if bool(got.get("leak")) == exp["leak"] else "BAD"
    extra = ""
    if exp["leak"]:
        s = same_site(got.get("site"), resolve_site(exp["site"]))
        r = bool(got.get("root")) and exp["root"] in str(got.get("root"))
        c = got.get("category") == exp["category"]
        extra = f" site={'Y' if s else 'n'} root={'Y' if r else 'n'} cat={'Y' if c else 'n'}"
    return (
        f"  {tool:11s} {ok}{' FLAKY' if flaky else ''} {os.path.basename(path):40s}"
        f" {got.get('seconds', 0):5.1f}s{extra}  {got.get('verdict', '')}  {got.get('site')}"
        f"  {got.get('root')}  {got.get('category')}"
        f"{'  ERROR ' + got['error'] if 'error' in got else ''}"
    )


def evaluate(
    corpus: str, tools: list[str], args: argparse.Namespace, everything: dict[str, Any]
) -> dict[str, dict[str, float]]:
    cases = scenarios(args.pattern, corpus)
    n_leaks = sum(1 for c in cases if expected(c)["leak"])
    print(
        f"{corpus} corpus: {len(cases)} scenarios ({n_leaks} leaks, "
        f"{len(cases) - n_leaks} look-alikes), {args.runs} run(s) each",
        flush=True,
    )
    table: dict[str, dict[str, float]] = {}
    for tool in tools:
        if not available(tool):
            print(f"{tool}: not installed, skipped")
            continue
        jobs = [(path, k) for path in cases for k in range(args.runs)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_case, tool, path, args.timeout) for path, _ in jobs]
            results = [f.result() for f in futures]
        per_case: dict[str, list[dict[str, Any]]] = {}
        for (path, _k), got in zip(jobs, results):
            per_case.setdefault(path, []).append(got)
        rows = []
        for path in cases:
            exp = expected(path)
            got_runs = per_case[path]
            rows.append((exp, got_runs[0]))
            flaky = len({bool(r.get("leak")) for r in got_runs}) > 1
            everything.setdefault(corpus, {}).setdefault(tool, {})[os.path.basename(path)] = (
                got_runs
            )
            if args.verbose:
                print(_line(tool, path, exp, got_runs[0], flaky), flush=True)
        table[tool] = score(rows, [per_case[p] for p in cases])
    return table


def print_table(corpus: str, table: dict[str, dict[str, float]]) -> None:
    print()
    print(f"{corpus} corpus")
    print()
    print(
        "| tool | precision | recall | site accuracy | root accuracy | category accuracy"
        " | flaky cases | median s/case | max s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for tool, s in table.items():
        print(
            f"| {tool} | {s['precision']:.2f} | {s['recall']:.2f} | {s['site']:.0%} | "
            f"{s['root']:.0%} | {s['category']:.0%} | {int(s['flaky'])} | {s['median_s']:.2f} |"
            f" {s['max_s']:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="synthetic,real", help="synthetic, real or both")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument(
        "-k", dest="pattern", default="", help="only scenarios whose name contains this"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per case (flakiness)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="cases run in parallel")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", dest="json_out", help="also write all results here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case")
    parser.add_argument("--one", nargs=2, metavar=("TOOL", "SCENARIO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        tool, path = args.one
        sys.path.insert(0, HERE)
        print(json.dumps(RUNNERS[tool](path)))
        return
    tools = [t for t in args.tools.split(",") if t]
    everything: dict[str, Any] = {}
    tables = {}
    for corpus in [c for c in args.corpus.split(",") if c]:
        if corpus not in CORPORA:
            raise SystemExit(f"unknown corpus {corpus!r}: choose from {', '.join(CORPORA)}")
        tables[corpus] = evaluate(corpus, tools, args, everything)
    for corpus, table in tables.items():
        print_table(corpus, table)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            json.dump({"tables": tables, "cases": everything}, fh, indent=2)


if __name__ == "__main__":
    main()
