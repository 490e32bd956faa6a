"""Work submitted to a ThreadPoolExecutor; results used and futures dropped."""

from concurrent.futures import ThreadPoolExecutor

EXPECTED = {"leak": False}

executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="render")


def render(i: int) -> str:
    return f"<html><body>{i}</body></html>" + "<p>item</p>" * 40


def step(i: int) -> None:
    len(executor.submit(render, i).result())


def teardown() -> None:
    executor.shutdown(wait=True)
