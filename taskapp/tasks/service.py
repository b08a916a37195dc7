"""The rules of a task write, shared by the API and the CLI. Nothing here commits."""

from flask import abort, current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from taskapp import overdue
from taskapp.api import field_error
from taskapp.auth.roles import PERMISSION_DENIED
from taskapp.extensions import db
from taskapp.models import Role, Status, Task, User, utcnow
from taskapp.tasks.queries import visible_tasks

NOT_FOUND = "No Task matches the given query."


def get_visible_task(user: User, task_id: int, *, for_update: bool = False) -> Task:
    """The task if ``user`` may see it; 404 otherwise, the same as for a missing id."""
    query = (
        visible_tasks(user)
        .where(Task.id == task_id)
        .options(joinedload(Task.assigned_to, innerjoin=True))
    )
    if for_update:
        query = query.with_for_update(of=Task)
    task = db.session.execute(query).scalar_one_or_none()
    if task is None:
        abort(404, NOT_FOUND)
    return task


def resolve_assignee(user: User, assignee_id: int | None) -> User:
    """The user a task goes to: the caller by default; an INTERN may name only
    themselves (403); an ADMIN any active user (400 otherwise)."""
    if assignee_id is None or assignee_id == user.id:
        return user
    if user.role != Role.ADMIN:
        abort(403, PERMISSION_DENIED)
    assignee = db.session.execute(
        select(User).where(User.id == assignee_id, User.is_active)
    ).scalar_one_or_none()
    if assignee is None:
        message = f'Invalid pk "{assignee_id}" - object does not exist.'
        field_error("assigned_to", message)
    return assignee


def create_task(user: User, data: dict) -> Task:
    assignee = resolve_assignee(user, data.pop("assigned_to_id", None))
    task = Task(created_by_id=user.id, assigned_to=assignee)
    apply_changes(task, data)
    db.session.add(task)
    db.session.flush()
    return task


def update_task(user: User, task: Task, data: dict) -> None:
    if "assigned_to_id" in data:
        assignee = resolve_assignee(user, data.pop("assigned_to_id"))
        if assignee.id != task.assigned_to_id:
            task.assigned_to = assignee
    apply_changes(task, data)


def _no_longer_overdue(task: Task) -> bool:
    if task.status != Status.OVERDUE:
        return False
    return task.due_date is None or task.due_date >= overdue.today(current_app.config)


def apply_changes(task: Task, data: dict) -> None:
    """Set fields and keep the status rules: COMPLETED stamps ``completed_at`` and leaving
    it clears it; moving an OVERDUE task's due date to today or later (or removing it)
    puts it back to PENDING."""
    previous_status = task.status
    for field, value in data.items():
        setattr(task, field, value)
    if "status" not in data and "due_date" in data and _no_longer_overdue(task):
        task.status = Status.PENDING
    if task.status == Status.COMPLETED and previous_status != Status.COMPLETED:
        task.completed_at = utcnow()
    elif task.status != Status.COMPLETED:
        task.completed_at = None
