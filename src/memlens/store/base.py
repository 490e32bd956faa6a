"""The interface every session store implements, and the rows it lists.

The SQLite store is the embedded default; a shared store (Redis) can be added later
behind the same :class:`SessionStore` protocol without touching the commands.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from memlens.core.series import Series
from memlens.core.session import Session

#: The id that names the newest session (checked before any partial match).
LATEST = "latest"


def pick_id(key: str, newest_first: list[str], location: str) -> str:
    """Resolve ``key`` among stored ids: exact, then ``latest``, then a unique prefix/suffix.

    For backends without a query language (Redis); SQLite does the same in SQL.
    """
    from memlens.core.errors import NotFoundError

    key = key.strip()
    if not key:
        raise NotFoundError("empty session id")
    if key in newest_first:
        return key
    if key == LATEST:
        if newest_first:
            return newest_first[0]
        raise NotFoundError(f"no sessions in {location}, so no 'latest'")
    matches = [i for i in newest_first if i.startswith(key) or i.endswith(key)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:5]) + (", …" if len(matches) > 5 else "")
        raise NotFoundError(f"session id {key!r} is ambiguous: matches {shown}")
    raise NotFoundError(f"no session {key!r} in {location} (see `memlens sessions`)")


def session_from(data: Any, full_id: str) -> Session:
    """A decoded session blob (with its series) as a ``Session``, or one clear error."""
    from memlens.core.errors import StoreError

    try:
        return Session.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"session {full_id} cannot be read: {exc}") from exc


def series_from(data: Any, full_id: str) -> Series:
    """A decoded series blob as a ``Series``, or one clear error."""
    from memlens.core.errors import StoreError

    try:
        return Series.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"session {full_id} samples cannot be read: {exc}") from exc


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
