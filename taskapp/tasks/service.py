"""The rules of a task write: visibility, assignment, the status rules. Nothing here
commits; the caller does, once."""

from datetime import date
from types import SimpleNamespace

from sqlalchemy import Connection, Select, bindparam, select
from sqlalchemy.orm import Session, joinedload, make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from taskapp import audit
from taskapp.errors import InvalidField, NotFound, PermissionDenied
from taskapp.models import Role, utcnow
from taskapp.tasks import recurrence
from taskapp.tasks.models import SERIES, Status, Task, task_fields
from taskapp.users.models import User
from taskapp.visibility import visible_tasks

SERIES_FIELDS = tuple(task_fields(SERIES))
"""What the next occurrence of a recurring task copies (besides the rule and series)."""


def get_visible_task(
    session: Session, user: User, task_id: int, *, for_update: bool = False
) -> Task:
    """The task if ``user`` may see it; NotFound otherwise, the same as a missing id."""
    query = (
        visible_tasks(user)
        .where(Task.id == task_id)
        .options(joinedload(Task.assigned_to, innerjoin=True))
    )
    if for_update:
        query = query.with_for_update(of=Task)
    task = session.execute(query).scalar_one_or_none()
    if task is None:
        raise NotFound("Task")
    return task


def as_rows(query: Select) -> Select:
    """``query`` (a select of tasks) as plain rows: the task's columns and its assignee's
    username (one join), what the task answer shows, with no ORM entity built."""
    columns = (*Task.__table__.c, User.username.label("assigned_to_username"))
    return query.with_only_columns(*columns).join(User, User.id == Task.assigned_to_id)


def get_visible_row(reader: Session | Connection, user: User, task_id: int):
    """The task as a row of its columns and ``assigned_to_username`` (no ORM entity),
    if ``user`` may see it; NotFound otherwise. One statement per role, built once."""
    query = VISIBLE_ROW[user.role == Role.ADMIN]
    params = {"task_id": task_id, "owner_id": user.id}
    row = reader.execute(query, params).first()
    if row is None:
        raise NotFound("Task")
    return row


def _visible_row(role: Role) -> Select:
    """The detail's statement for any caller of ``role`` (visibility.py's rule, with the
    caller's id as a bound parameter), built once."""
    caller = SimpleNamespace(role=role, id=bindparam("owner_id"))
    return as_rows(visible_tasks(caller).where(Task.id == bindparam("task_id")))


VISIBLE_ROW = {True: _visible_row(Role.ADMIN), False: _visible_row(Role.INTERN)}


def resolve_assignee(session: Session, user: User, assignee_id: int | None) -> User:
    """The user a task goes to: the caller by default (as given: the token check's plain
    record, see :func:`_entity`); an INTERN may name only themselves (PermissionDenied);
    an ADMIN any active user (InvalidField otherwise)."""
    if assignee_id is None or assignee_id == user.id:
        return user
    if user.role != Role.ADMIN:
        raise PermissionDenied()
    assignee = session.execute(
        select(User).where(User.id == assignee_id, User.is_active)
    ).scalar_one_or_none()
    if assignee is None:
        message = f'Invalid pk "{assignee_id}" - object does not exist.'
        raise InvalidField("assigned_to", message)
    return assignee


def _entity(session: Session, user) -> User:
    """The ORM ``User`` for the caller, who the token check read as a plain record: built
    from the values already read and attached as loaded (no SELECT), so that a task can
    point at it."""
    if isinstance(user, User):
        return user
    entity = session.identity_map.get(identity_key(User, user.id))
    if entity is None:
        values = {name: getattr(user, name) for name in AUTH_FIELDS}
        entity = User(**values)
        make_transient_to_detached(entity)
        session.add(entity)
    return entity


AUTH_FIELDS = ("id", "username", "email", "role", "is_active", "date_joined", "token_version")


def create_task(session: Session, user: User, data: dict, today: date) -> SimpleNamespace:
    """Create a task with its CREATED entry; returns it as written, in the shape of
    :func:`as_rows` (its columns and ``assigned_to_username``). Nothing is attached to
    ``session`` and no ORM ``User`` is made for the caller: a POST answers the row and
    is done."""
    assignee = resolve_assignee(session, user, data.pop("assigned_to_id", None))
    task = Task(created_by_id=user.id, assigned_to_id=assignee.id)
    apply_changes(task, data, today)
    first_of_series = ("series_id",) if task.recurrence is not None else ()
    row = audit.insert_created(session, task, own_id=first_of_series)
    return SimpleNamespace(**row._mapping, assigned_to_username=assignee.username)


def update_task(session: Session, user: User, task: Task, data: dict, today: date) -> None:
    """Apply a PATCH or PUT; completing a recurring task creates its next occurrence."""
    if "assigned_to_id" in data:
        assignee = resolve_assignee(session, user, data.pop("assigned_to_id"))
        if assignee.id != task.assigned_to_id:
            task.assigned_to = _entity(session, assignee)
    was_completed = task.status == Status.COMPLETED
    apply_changes(task, data, today)
    if task.status == Status.COMPLETED and not was_completed:
        continue_series(session, task)


def complete_task(session: Session, task: Task, today: date) -> bool:
    """Mark ``task`` COMPLETED (the CLI's ``flask tasks complete``); False if it was."""
    if task.status == Status.COMPLETED:
        return False
    apply_changes(task, {"status": Status.COMPLETED}, today)
    continue_series(session, task)
    return True


def continue_series(session: Session, task: Task) -> Task | None:
    """Create the occurrence after ``task``, which has just become COMPLETED, in the
    same transaction; None when it is not recurring, its series is over (COUNT, UNTIL)
    or it already created its successor (completed, re-opened, completed again)."""
    if task.recurrence is None or task.next_occurrence_id is not None:
        return None
    due = recurrence.next_due(task.recurrence, task.series_start, task.due_date, task.occurrence)
    if due is None:
        return None
    following = Task(
        **{field: getattr(task, field) for field in SERIES_FIELDS},
        status=Status.PENDING,
        due_date=due,
        recurrence=task.recurrence,
        series_id=task.series_id,
        series_start=task.series_start,
        occurrence=task.occurrence + 1,
        remind_at=_shifted(task.remind_at, due - task.due_date),
    )
    session.add(following)
    session.flush()
    task.next_occurrence_id = following.id
    return following


def _shifted(remind_at, delta):
    """The next occurrence is reminded as long before its due date as this one was.
    Writes refuse a rule whose next reminder would overflow (see
    :func:`_check_next_reminder`); only an occurrence two or more steps on from such a
    write can still reach past year 9999, and it then has no reminder."""
    if remind_at is None:
        return None
    try:
        return remind_at + delta
    except OverflowError:
        return None


def apply_changes(task: Task, data: dict, today: date) -> None:
    """Set fields and keep the status rules: COMPLETED stamps ``completed_at`` and leaving
    it clears it; moving an OVERDUE task's due date to ``today`` or later (or removing
    it) puts it back to PENDING."""
    previous_status = task.status
    previous_rule, previous_remind_at = task.recurrence, task.remind_at
    for field, value in data.items():
        setattr(task, field, value)
    _check_rule(task, previous_rule)
    if data.keys() & {"recurrence", "due_date", "remind_at"}:
        _check_next_reminder(task, previous_rule, previous_remind_at)
    if task.remind_at != previous_remind_at:
        task.reminded_at = None
    if "status" not in data and "due_date" in data and _no_longer_overdue(task, today):
        task.status = Status.PENDING
    if task.status == Status.COMPLETED and previous_status != Status.COMPLETED:
        task.completed_at = utcnow()
    elif task.status != Status.COMPLETED:
        task.completed_at = None


def _check_rule(task: Task, previous_rule: str | None) -> None:
    """Validate the rule against the due date (either may have changed): 400 on
    ``recurrence`` saying why. A new or changed rule starts counting (COUNT) from this
    task: it becomes occurrence 1 and its due date the series' DTSTART (as does moving
    the first occurrence's due date); the series id stays (or is the task's own id,
    set once it has one)."""
    if task.recurrence is None:
        return
    try:
        if task.recurrence != previous_rule:
            task.recurrence = recurrence.validate(task.recurrence, task.due_date)
        elif task.due_date is None:
            raise recurrence.InvalidRule(recurrence.NEEDS_DUE_DATE)
    except recurrence.InvalidRule as error:
        raise InvalidField("recurrence", str(error)) from None
    first_moved = task.occurrence == 1 and task.series_start != task.due_date
    if task.recurrence != previous_rule or task.series_start is None or first_moved:
        task.series_start = task.due_date
        task.occurrence = 1
        if task.series_id is None:
            task.series_id = task.id


NEXT_REMINDER_OVERFLOWS = (
    "The next occurrence would be reminded after 9999-12-31 (its reminder keeps the "
    "same distance to its due date as this one's), which no date can hold."
)


def _check_next_reminder(task: Task, previous_rule: str | None, previous_remind_at) -> None:
    """Refuse a recurring task whose next occurrence's reminder could not be stored,
    rather than create that occurrence later without it. The error names the field the
    write changed: the rule, else the reminder, else the due date."""
    if task.recurrence is None or task.remind_at is None:
        return
    due = recurrence.next_due(task.recurrence, task.series_start, task.due_date, task.occurrence)
    if due is None:
        return
    try:
        task.remind_at + (due - task.due_date)
    except OverflowError:
        if task.recurrence != previous_rule:
            field = "recurrence"
        elif task.remind_at != previous_remind_at:
            field = "remind_at"
        else:
            field = "due_date"
        raise InvalidField(field, NEXT_REMINDER_OVERFLOWS) from None


def _no_longer_overdue(task: Task, today: date) -> bool:
    if task.status != Status.OVERDUE:
        return False
    return task.due_date is None or task.due_date >= today
