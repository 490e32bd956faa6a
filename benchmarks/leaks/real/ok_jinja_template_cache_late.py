"""A jinja2 Environment with cache_size=400 serving 3,000 distinct templates."""

import jinja2

EXPECTED = {"leak": False}

env = jinja2.Environment(
    loader=jinja2.DictLoader(
        {f"mail-{k}.txt": "Hello {{ name }}, order %d" % k for k in range(3000)}  # noqa: UP031
    ),
    cache_size=400,
    auto_reload=False,
)


def step(i: int) -> None:
    env.get_template(f"mail-{i % 3000}.txt").render(name="Ada")
