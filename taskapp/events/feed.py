"""The sync feed: what changed, for one user, since a token.

Two passes, one token:

1. No token: the full current set of the user's tasks, paged by id. Its position is the
   log's head taken *before* the first page is read, so every change that a page might
   have missed (it committed after the position was taken) is after the position.
2. Then, from that position on: the entries the user hears of (visibility.py), in commit
   order (log.py), a page of entries at a time. Each task they name is sent once: in
   ``changed`` as it is now if the user may see it now, else in ``removed``.

A client that keeps calling with ``next`` until ``more`` is false thus holds exactly the
tasks it may see, as they are (a change still uncommitted then is simply in the next
sync). Nothing here knows of HTTP: the caller signs the token and dumps the rows.
"""

from dataclasses import dataclass

from sqlalchemy.orm import Session

from taskapp.events import log
from taskapp.events.signed import Token
from taskapp.tasks.models import Task
from taskapp.tasks.service import as_rows
from taskapp.users.models import User
from taskapp.visibility import visible_tasks


@dataclass
class FeedPage:
    changed: list
    """Task rows (columns and ``assigned_to_username``), oldest change first."""
    removed: list[int]
    next: Token
    more: bool


def page(session: Session, user: User, token: Token | None, size: int, now: int) -> FeedPage:
    if token is None:
        token = Token(log.head(session), now, after_task=0)
    if token.after_task is not None:
        return _full_set_page(session, user, token, size, now)
    return _changes_page(session, user, token, size, now)


def _full_set_page(session, user, token: Token, size: int, now: int) -> FeedPage:
    query = visible_tasks(user).where(Task.id > token.after_task).order_by(Task.id)
    rows = _task_rows(session, query.limit(size + 1))
    if len(rows) > size:
        rows = rows[:size]
        return FeedPage(rows, [], Token(token.position, now, rows[-1].id), more=True)
    # The first pass is over; the changes made while it ran come next (call again).
    return FeedPage(rows, [], Token(token.position, now), more=True)


def _changes_page(session, user, token: Token, size: int, now: int) -> FeedPage:
    read = log.read(session, user, token.position, size + 1)
    entries, more = read.entries[:size], len(read.entries) > size
    end = log.position_of(entries[-1]) if more else read.end
    if not entries:
        return FeedPage([], [], Token(end, now), more=False)
    last_change = {entry.task_id: index for index, entry in enumerate(entries)}
    ids = sorted(last_change, key=last_change.get)
    current = {
        row.id: row for row in _task_rows(session, visible_tasks(user).where(Task.id.in_(ids)))
    }
    changed = [current[task_id] for task_id in ids if task_id in current]
    removed = [task_id for task_id in ids if task_id not in current]
    return FeedPage(changed, removed, Token(end, now), more)


def _task_rows(session: Session, query) -> list:
    return session.connection().execute(as_rows(query)).all()
