"""memlens's own footprint: what starting the monitor, or ``memlens --help``, adds.

Each variant runs in a fresh interpreter, several rounds in rotating order, side by
side with a bare ``python -c pass`` in the same run:

- ``bare``: nothing (the baseline);
- ``import``: ``import memlens``;
- ``production``: ``import memlens`` and start ``memlens.Monitor`` in the
  ``production`` mode with ``persist_history = false``, let it take a few samples,
  stop it;
- ``prod+history``: the same with the default configuration (``persist_history =
  true``, the default store ``./.memlens/memlens.db``): the start continues the
  history the previous round left (a restart), and the stop saves it;
- ``standard``: the same in ``standard`` mode (sampled allocation sites);
- ``--help``: ``memlens --help`` (the CLI's start-up path).

Printed per variant: median wall time of the whole process and its ratio to bare
(the monitor variants include a 0.25 s sleep and the stop), memlens's own time inside
the process (``import ms``: ``import memlens`` and resolving ``memlens.Monitor``;
``memlens ms``: that plus building and starting the monitor; for ``--help`` the whole
command), the CPU time of that part (``CPU ms``: on a busy machine the wall times also
measure the neighbours; CPU time does much less), the peak RSS (VmHWM) added over
bare, and the modules loaded beyond bare.
Targets (issue #15): the production monitor adds <= 2 MiB RSS and <= 30 ms.

Then (``--flush-days``, 0 to skip) one history flush of a full history of that many
days, in the production mode's fields and cadence, measured in fresh processes: to
the history file (the default) and through the SQLite store (what a monitor handed a
store, or the code before the history file, does); the peak RSS the flush adds
(VmHWM reset right before it) and its wall time, medians of ``--rounds`` runs.

Usage: python benchmarks/bench_footprint.py [--rounds 9] [--flush-days 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPORT = """
import json, resource, sys
def _peak():
    with open("/proc/self/status") as f:
        return {l.split(":")[0]: int(l.split()[1]) for l in f if l.startswith(("VmHWM", "VmRSS"))}
_usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"kib": _peak(), "modules": sorted(sys.modules), "ms": _ms,
                  "import_ms": _import_ms, "cpu_ms": _cpu_ms,
                  "process_cpu_ms": (_usage.ru_utime + _usage.ru_stime) * 1000}))
"""

# The public path: ``import memlens``, then ``memlens.Monitor`` (a lazy export) built
# from the mode's config. With history persisted, the start restores what the previous
# round saved and the stop saves it again: both are in the peak RSS.
MONITOR = """
import time
_t0, _c0 = time.perf_counter(), time.process_time()
import memlens
Monitor, load_config = memlens.Monitor, memlens.load_config
_t1 = time.perf_counter()
m = Monitor(load_config(None, mode={mode!r}, service_name="bench"{options})).start()
_t2, _c2 = time.perf_counter(), time.process_time()
_ms, _import_ms, _cpu_ms = (_t2 - _t0) * 1000, (_t1 - _t0) * 1000, (_c2 - _c0) * 1000
time.sleep(0.25)
m.stop()
if m.config.persist_history and (m.flush_errors or m.last_flush is None):
    raise SystemExit(f"history not saved: {{m.last_flush_error}}")
"""

VARIANTS: dict[str, str] = {
    "bare": "_ms = _import_ms = _cpu_ms = 0.0",
    "import": "import time\n_t0, _c0 = time.perf_counter(), time.process_time()\n"
    "import memlens\n_ms = _import_ms = (time.perf_counter() - _t0) * 1000\n"
    "_cpu_ms = (time.process_time() - _c0) * 1000",
    "production": MONITOR.format(mode="production", options=", persist_history=False"),
    "prod+history": MONITOR.format(mode="production", options=""),
    "standard": MONITOR.format(mode="standard", options=", persist_history=False"),
}


# One flush of a full history: the series filled directly (as days of sampling would),
# the high-water mark reset, then ``flush()`` to the file or through an open store.
FLUSH = """
import json, os, random, sys, time
from memlens.core.config import Config
from memlens.service import Monitor
how, days, db = sys.argv[1], float(sys.argv[2]), sys.argv[3]
store = None
if how == "store":
    from memlens.store import open_store
    store = open_store(db)
cfg = Config(mode="production", db_path=db, service_name="flush", history_flush_interval=1e9)
m = Monitor(cfg, store=store)
rng = random.Random(1)
fields = ("rss", "vms", "peak_rss", "gc_collections", "gc_collected", "gc_uncollectable")
for i in range(int(days * 86400 / m.interval)):
    m.series.append(i * m.interval, {f: 1e8 + rng.random() * 1e6 for f in fields})
def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
t0 = time.perf_counter()
ok = m.flush()
ms = (time.perf_counter() - t0) * 1000
assert ok, m.last_flush_error
print(json.dumps({"kib": status("VmHWM") - before, "ms": ms, "samples": m.series.count}))
"""


def flush_costs(days: float, rounds: int, env: dict[str, str]) -> None:
    """Print the peak RSS and time of one flush of a ``days``-long history, both ways."""
    out: dict[str, list[dict[str, float]]] = {"file": [], "store": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for how in ("file", "store") if r % 2 == 0 else ("store", "file"):
                db = os.path.join(tmp, f"{how}{r}.db")
                done = subprocess.run(
                    [sys.executable, "-c", FLUSH, how, str(days), db],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                if done.returncode != 0:
                    raise SystemExit(f"flush {how}: {done.stderr.strip()[-500:]}")
                out[how].append(json.loads(done.stdout.strip().splitlines()[-1]))
    held = int(out["file"][0]["samples"])
    print(f"one flush of a {days:g}-day history ({held} samples recorded), median of {rounds}:")
    for how, label in (("file", "history file (default)"), ("store", "through the store")):
        kib = statistics.median(x["kib"] for x in out[how])
        ms = statistics.median(x["ms"] for x in out[how])
        print(f"  {label:<24} +{kib / 1024:.2f} MiB peak RSS  {ms:.1f} ms")


def run(variant: str, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    if variant == "--help":
        # The console script's entry point, then the report from an atexit hook.
        code = (
            "import atexit, sys, time\n"
            "_t0, _c0 = time.perf_counter(), time.process_time()\n"
            "def _report():\n"
            "    _ms = (time.perf_counter() - _t0) * 1000\n"
            "    _cpu_ms = (time.process_time() - _c0) * 1000\n"
            f"    exec({REPORT!r}, {{'_ms': _ms, '_import_ms': _ms, '_cpu_ms': _cpu_ms}})\n"
            "atexit.register(_report)\n"
            "sys.argv = ['memlens', '--help']\n"
            "from memlens.cli.main import main\n"
            "main()\n"
        )
    else:
        code = VARIANTS[variant] + "\n" + REPORT
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - t0
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise SystemExit(f"{variant}: {out.stderr.strip()[-500:]}")
    return wall, json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--flush-days", type=float, default=30.0)
    args = parser.parse_args()
    report(args.rounds)
    if args.flush_days > 0:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMLENS_")}
        flush_costs(args.flush_days, args.rounds, env)


def report(rounds: int, names: list[str] | None = None) -> None:
    """Run the variants side by side for ``rounds`` rounds and print the table."""
    names = names or ["bare", "import", "production", "prod+history", "standard", "--help"]
    load_before = os.getloadavg()
    walls: dict[str, list[float]] = {n: [] for n in names}
    peaks: dict[str, list[int]] = {n: [] for n in names}
    inner: dict[str, list[float]] = {n: [] for n in names}
    imports: dict[str, list[float]] = {n: [] for n in names}
    cpus: dict[str, list[float]] = {n: [] for n in names}
    process_cpus: dict[str, list[float]] = {n: [] for n in names}
    modules: dict[str, set[str]] = {}
    with tempfile.TemporaryDirectory() as home:
        # An empty directory: no memlens.toml or pyproject.toml of the caller's applies.
        # Bytecode is cached as an installed package's would be (a warm-up round fills
        # the cache), even where PYTHONDONTWRITEBYTECODE is set.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMLENS_")}
        env["PYTHONPYCACHEPREFIX"] = os.path.join(home, "pyc")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cwd = os.getcwd()
        os.chdir(home)
        for name in names:
            run(name, env)
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                wall, info = run(name, env)
                walls[name].append(wall)
                peaks[name].append(int(info["kib"]["VmHWM"]))  # type: ignore[index]
                modules[name] = set(info["modules"])  # type: ignore[arg-type]
                inner[name].append(float(info["ms"]))  # type: ignore[arg-type]
                imports[name].append(float(info["import_ms"]))  # type: ignore[arg-type]
                cpus[name].append(float(info["cpu_ms"]))  # type: ignore[arg-type]
                process_cpus[name].append(float(info["process_cpu_ms"]))  # type: ignore[arg-type]
        os.chdir(cwd)
    load_after = os.getloadavg()
    bare_wall = statistics.median(walls["bare"])
    bare_peak = statistics.median(peaks["bare"])
    bare_cpu = statistics.median(process_cpus["bare"])
    print(
        f"{rounds} rounds; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after; {sys.version.split()[0]}"
    )
    print(
        f"bare python: {bare_wall * 1000:.1f} ms, {bare_cpu:.1f} ms CPU, "
        f"peak RSS {bare_peak / 1024:.1f} MiB"
    )
    print(
        f"{'variant':<14}{'wall':>9}{'ratio':>8}{'import ms':>11}{'memlens ms':>12}"
        f"{'CPU ms':>9}{'+peak RSS':>12}{'modules':>9}"
    )
    for name in names:
        wall = statistics.median(walls[name])
        added_rss = statistics.median(p - b for p, b in zip(peaks[name], peaks["bare"]))
        extra = len(modules[name] - modules["bare"])
        print(
            f"{name:<14}{wall * 1000:>7.1f}ms{wall / bare_wall:>7.2f}x"
            f"{statistics.median(imports[name]):>9.1f}ms"
            f"{statistics.median(inner[name]):>10.1f}ms{statistics.median(cpus[name]):>7.1f}ms"
            f"{added_rss / 1024:>8.2f} MiB{extra:>9}"
        )
    for name, what in (("production", "persist_history = false"), ("prod+history", "default")):
        if name not in names:
            continue
        rss = statistics.median(p - b for p, b in zip(peaks[name], peaks["bare"]))
        ms = statistics.median(inner[name])
        cpu = statistics.median(cpus[name])
        print(
            f"production monitor ({what}): +{rss / 1024:.2f} MiB peak RSS (target <= 2 MiB), "
            f"{ms:.1f} ms ({cpu:.1f} ms CPU) to import and start (target <= 30 ms); "
            f"a bare interpreter: {bare_wall * 1000:.1f} ms ({bare_cpu:.1f} ms CPU)"
        )


if __name__ == "__main__":
    main()
