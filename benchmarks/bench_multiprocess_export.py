"""Cost of one ``MultiprocessExporter`` write: read the monitor's families and update
this process's files in ``PROMETHEUS_MULTIPROC_DIR``, set against the single-process
read alone (``metrics.collect``, what a scrape of one process costs), per mode.

Usage: python benchmarks/bench_multiprocess_export.py [--writes 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="memlens-prom-")
    from memlens.core.config import Config
    from memlens.service import Monitor
    from memlens.service.metrics import collect
    from memlens.service.prometheus import MultiprocessExporter

    print(f"{'mode':<12}{'collect':>12}{'collect + write':>18}{'ratio':>8}")
    for mode in ("production", "standard", "debug"):
        mon = Monitor(Config(mode=mode, persist_history=False)).start(thread=False)
        exporter = MultiprocessExporter(mon)
        for _ in range(5):
            mon.sample_now()
        began = time.perf_counter()
        for _ in range(args.writes):
            collect(mon)
        read = (time.perf_counter() - began) / args.writes
        began = time.perf_counter()
        for _ in range(args.writes):
            exporter.write()
        write = (time.perf_counter() - began) / args.writes
        print(f"{mode:<12}{read * 1e3:>9.2f} ms{write * 1e3:>15.2f} ms{write / read:>7.1f}×")
        exporter.detach()
        mon.stop()


if __name__ == "__main__":
    main()
