"""The interface every session store implements, and the rows it lists.

The SQLite store is the embedded default; a shared store (Redis) can be added later
behind the same :class:`SessionStore` protocol without touching the commands.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from memlens.core.series import Series
from memlens.core.session import Session


@dataclass(frozen=True)
class SessionRow:
    """What ``list()`` returns for one stored session: summary columns only.

    ``corrupted`` is set when a stored blob failed its checksum (or could not be
    read); such a session is still listed so that the user sees it, but loading it
    raises :class:`~memlens.core.errors.StoreError`.
    """

    id: str
    name: str
    kind: str
    status: str
    started_at: str
    duration: float
    peak_rss: int
    growth: int
    saved_at: str = ""
    stored_bytes: int = 0
    corrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class SessionStore(Protocol):
    """Saves and reads :class:`~memlens.core.session.Session` objects.

    Ids given to ``load``/``delete``/``samples`` may be a full id or a unique
    prefix of one; an unknown id raises :class:`~memlens.core.errors.NotFoundError`.
    """

    @property
    def location(self) -> str:
        """Where the store lives, for messages (a path or a URL)."""
        ...

    def save(self, session: Session) -> str:
        """Store ``session`` (replacing one with the same id) and return its id."""
        ...

    def load(self, session_id: str) -> Session:
        """Return the stored session; raises ``StoreError`` if its data is corrupted."""
        ...

    def list(
        self,
        *,
        kind: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        verify: bool = True,
    ) -> list[SessionRow]:
        """Summary rows, newest first, without decoding any session data."""
        ...

    def delete(self, session_id: str) -> str:
        """Delete one session and return its full id."""
        ...

    def samples(self, session_id: str) -> Series:
        """The session's time series only (cheaper than ``load``)."""
        ...

    def resolve(self, session_id: str) -> str:
        """Expand a unique id prefix to the full id."""
        ...

    def save_analysis(self, session_id: str, key: str, result: Any) -> None:
        """Set ``session.analyses[key] = result`` on a stored session, atomically."""
        ...

    def close(self) -> None:
        """Release the connection; the store can't be used afterwards."""
        ...
