"""Rendered pages kept as concurrent.futures results in a dict that is never pruned."""

from concurrent.futures import Future, ThreadPoolExecutor

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_futures_kept_results.py#render",
    "root": "_jobs",
}

executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="render")
_jobs: dict[int, Future[str]] = {}


def render(i: int) -> str:
    return f"<html><body>{i}</body></html>" + "<p>item</p>" * 40  # leak-site: render


def step(i: int) -> None:
    _jobs[i] = executor.submit(render, i)
    _jobs[i].result()


def teardown() -> None:
    executor.shutdown(wait=True)
