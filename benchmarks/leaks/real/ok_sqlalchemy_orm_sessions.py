"""A SQLAlchemy ORM session per request on in-memory SQLite, committed and closed."""

from sqlalchemy import String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

EXPECTED = {"leak": False}


class Base(DeclarativeBase):
    pass


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))


engine = create_engine("sqlite://")
Base.metadata.create_all(engine)


def step(i: int) -> None:
    with Session(engine) as session:
        session.add(Event(name=f"event-{i}"))
        session.flush()
        session.query(Event).filter(Event.name == f"event-{i}").one()
        session.rollback()
