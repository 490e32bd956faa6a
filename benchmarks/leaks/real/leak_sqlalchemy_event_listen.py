"""Each request adds a SQLAlchemy before_execute listener on the shared engine."""

from sqlalchemy import create_engine, event, text

EXPECTED = {
    "leak": True,
    "category": "listener",
    "site": "real/leak_sqlalchemy_event_listen.py#payload",
    "root": "engine",
}

engine = create_engine("sqlite://")


def handle(i: int) -> None:
    tags = {"request": i, "labels": [f"tag{k}-{i}" for k in range(12)]}  # leak-site: payload

    def annotate(conn, clauseelement, multiparams, params, execution_options):  # type: ignore[no-untyped-def]
        return tags

    event.listen(engine, "before_execute", annotate)


def setup() -> None:
    with engine.connect() as conn:
        conn.execute(text("select 1"))


def step(i: int) -> None:
    handle(i)
