"""flask CLI: ``flask users ...``, ``flask tasks mark-overdue|complete|remind``,
``flask demo seed``."""

from datetime import date, timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from taskapp import audit, overdue
from taskapp.extensions import db
from taskapp.jobs import run_reminder_sweep
from taskapp.models import Priority, Role, Source, Status, Task, User
from taskapp.tasks import service as tasks
from taskapp.users import service

users_cli = AppGroup("users", help="Manage users.")
tasks_cli = AppGroup("tasks", help="Task maintenance.")
demo_cli = AppGroup("demo", help="Demo data for trying the API.")
ROLE = click.Choice([role.value for role in Role], case_sensitive=False)


def register(app: Flask) -> None:
    for group in (users_cli, tasks_cli, demo_cli):
        app.cli.add_command(group)


def _user_or_fail(username: str) -> User:
    user = service.find_by_username(db.session, username)
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


def _commit(message: str) -> None:
    db.session.commit()
    click.echo(message)


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=ROLE, default=Role.INTERN.value, show_default=True)
@click.option("--email", default="")
@click.password_option(help="Prompted (hidden, confirmed) when not given.")
def create_user(username: str, role: str, email: str, password: str) -> None:
    """Create a user."""
    try:
        user = service.create_user(db.session, username, password, Role(role.upper()), email)
    except service.UsernameTaken as error:
        raise click.ClickException(str(error)) from None
    _commit(f"created user {user.username} (id {user.id}, {user.role.value})")


@users_cli.command("list")
def list_users() -> None:
    """List users."""
    for user in db.session.execute(select(User).order_by(User.id)).scalars():
        state = "active" if user.is_active else "inactive"
        click.echo(f"{user.id}\t{user.username}\t{user.role.value}\t{state}\t{user.email}")


@users_cli.command("set-role")
@click.argument("username")
@click.argument("role", type=ROLE)
def set_role(username: str, role: str) -> None:
    """Change a user's role (their tokens stop working)."""
    user = _user_or_fail(username)
    service.update_user(user, {"role": Role(role.upper())})
    _commit(f"{user.username} is now {user.role.value}")


@users_cli.command("set-password")
@click.argument("username")
@click.password_option(help="Prompted (hidden, confirmed) when not given.")
def set_password(username: str, password: str) -> None:
    """Change a user's password (their tokens stop working)."""
    user = _user_or_fail(username)
    service.update_user(user, {"password": password})
    _commit(f"password of {user.username} changed")


@users_cli.command("deactivate")
@click.argument("username")
def deactivate(username: str) -> None:
    """Deactivate a user (their tokens stop working; their tasks and logs stay)."""
    user = _user_or_fail(username)
    service.update_user(user, {"is_active": False})
    _commit(f"{user.username} deactivated")


@tasks_cli.command("mark-overdue")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Pretend today is this date (YYYY-MM-DD).",
)
def mark_overdue(today) -> None:
    """Run the overdue sweep now and print how many tasks it marked."""
    day = today.date() if today else overdue.today(current_app.config)
    marked = overdue.mark_overdue(db.session, day)
    _commit(f"marked {marked} task(s) overdue (today is {day.isoformat()})")


@tasks_cli.command("remind")
def remind() -> None:
    """Run the reminder sweep now and print how many reminders it announced."""
    reminded, owed = run_reminder_sweep()
    click.echo(f"announced {len(reminded)} reminder(s); {len(owed)} e-mail(s) queued")


@tasks_cli.command("complete")
@click.argument("task_id", type=int)
def complete(task_id: int) -> None:
    """Mark a task COMPLETED (a recurring one gets its next occurrence)."""
    task = db.session.get(Task, task_id, with_for_update=True)
    if task is None:
        raise click.ClickException(f"no task with id {task_id}")
    audit.act_as(db.session, None, Source.CLI)
    if not tasks.complete_task(db.session, task, overdue.today(current_app.config)):
        raise click.ClickException(f"task {task_id} is already completed")
    following = task.next_occurrence_id
    db.session.commit()
    suffix = f"; next occurrence is task {following}" if following else ""
    click.echo(f"task {task_id} completed{suffix}")


DEMO_TASKS = [
    ("Write the onboarding guide", Status.IN_PROGRESS, Priority.HIGH, 3),
    ("Review pull requests", Status.PENDING, Priority.MEDIUM, 1),
    ("Fix the login page typo", Status.COMPLETED, Priority.LOW, -2),
    ("Prepare the sprint demo", Status.PENDING, Priority.HIGH, -1),
    ("Clean up old branches", Status.PENDING, Priority.LOW, None),
]


@demo_cli.command("seed")
@click.option("--password", default="taskapp-demo", show_default=True)
def seed(password: str) -> None:
    """Create users admin and intern (if missing) and a few tasks for the intern."""
    if current_app.config["TASKAPP_ENV"] == "production":
        raise click.ClickException("demo data is for development; not in production")
    created = []
    for username, role in (("admin", Role.ADMIN), ("intern", Role.INTERN)):
        if service.find_by_username(db.session, username) is None:
            user = service.create_user(
                db.session, username, password, role, f"{username}@example.com"
            )
            created.append(user)
    intern = service.find_by_username(db.session, "intern")
    admin = service.find_by_username(db.session, "admin")
    if intern in created:
        audit.act_as(db.session, admin.id, Source.CLI)
        for title, status, priority, days in DEMO_TASKS:
            due = date.today() + timedelta(days=days) if days is not None else None
            task = Task(
                title=title,
                status=status,
                priority=priority,
                due_date=due,
                assigned_to_id=intern.id,
                created_by_id=admin.id,
            )
            db.session.add(task)
    db.session.commit()
    names = ", ".join(user.username for user in created) or "none (already there)"
    click.echo(f"demo users created: {names}")
