"""SQLAlchemy Core tables built on a fresh MetaData per request: cyclic, freed by the GC."""

from sqlalchemy import Column, Integer, MetaData, String, Table, select

EXPECTED = {"leak": False}


def step(i: int) -> None:
    md = MetaData()
    t = Table(
        f"report_{i}", md, Column("id", Integer, primary_key=True), Column("name", String(20))
    )
    str(select(t.c.name).where(t.c.id == i))
