"""The activity log read in commit order, by position.

Ids are taken before commit: a transaction that took entry id 7 may commit after the one
that took id 8, so a reader that remembers "the last id I saw" would skip 7 for ever.

- PostgreSQL: a position is ``(seq, id)``: ``seq`` numbers the *transactions* that wrote
  entries in commit order (``commit_position``, migration 0008: a deferred trigger takes
  an advisory lock at COMMIT and the lock is released only once the commit is visible,
  so whoever sees ``seq`` n sees every transaction below n), ``id`` orders the entries of
  one transaction. An entry joins its transaction by ``xid``. We chose this over the
  ``pg_snapshot_xmin`` watermark because xmin is cluster-wide: any long write transaction,
  in any database of the cluster (a bulk import, a sweep), would hold every reader back
  until it ended, so a client could finish syncing without a change that had already
  committed. The price is that commits of task changes queue on one lock for the last
  instant of their commit (microseconds plus the WAL flush they do anyway).
- SQLite serialises writers (one write lock held to commit), so its ids are already in
  commit order: the position is ``(0, id)``.

Reading "after a position" in this order, a page at a time, therefore never misses an
entry and never shows one twice.
"""

from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    bindparam,
    func,
    literal,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import Session

from taskapp.events.models import CommitPosition
from taskapp.logs.models import ActivityLog
from taskapp.models import Role
from taskapp.visibility import entries_heard_by
from taskapp.webhooks.outbox import ENTRY_COLUMNS


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A place in the log: everything at or before it has been read."""

    seq: int
    id: int


START = Position(0, 0)
EVERYONE = SimpleNamespace(id=0, role=Role.ADMIN)
"""A listener who hears of every entry (an ADMIN's rule): the hub, `flask events tail`."""
WHOLE_COMMIT = 2**62
"""As a position's id: every entry of commit ``seq``."""


@dataclass
class Page:
    entries: list
    """Rows of ENTRY_COLUMNS plus ``seq``, oldest first."""
    end: Position
    """Where the next read starts: the last entry's position, or, when the page is not
    full, the head of the log as this read saw it (nothing more was there)."""


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def head(session: Session) -> Position:
    """A position every entry committed so far is at or before, and every entry
    committed later is after."""
    if is_postgresql(session):
        top = session.execute(select(func.max(CommitPosition.seq))).scalar_one()
        return Position(top or 0, WHOLE_COMMIT)
    last = session.execute(select(func.max(ActivityLog.id))).scalar_one()
    return Position(0, last or 0)


def read(session: Session, user, since: Position, limit: int) -> Page:
    """Up to ``limit`` entries that ``user`` hears of (visibility.entries_heard_by) after
    ``since``, oldest first, and the head of the log, in one statement (one snapshot): a
    page that is not full moves the position to the head, so a user who hears of little
    in a busy system starts the next read past everyone else's commits."""
    postgresql = is_postgresql(session)
    query = read_query(postgresql, user.role)
    params = {"listener_id": user.id, "since_seq": since.seq, "since_id": since.id, "limit": limit}
    rows = session.connection().execute(query, params).all()
    entries_read = [row for row in rows if row.id is not None]
    if len(entries_read) == limit:
        return Page(entries_read, position_of(entries_read[-1]))
    top_value = rows[0].top or 0
    head_position = Position(top_value, WHOLE_COMMIT) if postgresql else Position(0, top_value)
    return Page(entries_read, max(since, head_position))


@lru_cache(maxsize=8)
def read_query(postgresql: bool, role: Role) -> Select:
    """The one statement of :func:`read` for a listener of ``role``, built once: the
    listener, the position and the limit are bound parameters (``listener_id``,
    ``since_seq``, ``since_id``, ``limit``). The benchmark EXPLAINs it."""
    entries = entries_heard_by(SimpleNamespace(role=role, id=bindparam("listener_id")))
    since_seq = bindparam("since_seq", type_=BigInteger)
    since_id = bindparam("since_id", type_=BigInteger)
    if postgresql:
        top = select(func.max(CommitPosition.seq).label("top"))
        page = (
            entries.with_only_columns(*ENTRY_COLUMNS, CommitPosition.seq)
            .join(CommitPosition, CommitPosition.xid == ActivityLog.xid)
            .where(
                CommitPosition.seq >= since_seq,
                tuple_(CommitPosition.seq, ActivityLog.id) > tuple_(since_seq, since_id),
            )
            .order_by(CommitPosition.seq, ActivityLog.id)
        )
    else:
        top = select(func.max(ActivityLog.id).label("top"))
        page = (
            entries.with_only_columns(*ENTRY_COLUMNS, literal(0, BigInteger).label("seq"))
            .where(ActivityLog.id > since_id)
            .order_by(ActivityLog.id)
        )
    top, page = top.subquery("top"), page.limit(bindparam("limit", type_=Integer)).subquery("page")
    return (
        select(top.c.top, page)
        .select_from(top.outerjoin(page, true()))
        .order_by(page.c.seq, page.c.id)
    )


def position_of(entry) -> Position:
    return Position(entry.seq, entry.id)
