"""``flask tasks mark-overdue|remind|complete`` and ``flask demo seed``: the sweeps run
by hand and the operator's shortcuts, thin over the tasks domain."""

from datetime import date, timedelta

import click
from flask import current_app

from taskapp import audit
from taskapp.cli import CheckedGroup, commit
from taskapp.extensions import db
from taskapp.models import Role, Source
from taskapp.tasks import overdue
from taskapp.tasks import service as tasks
from taskapp.tasks.jobs import run_reminder_sweep
from taskapp.tasks.models import Priority, Status, Task
from taskapp.tasks.settings import TaskSettings
from taskapp.users import service
from taskapp.users.passwords import PasswordHashing

tasks_cli = CheckedGroup("tasks", help="Task maintenance.")
demo_cli = CheckedGroup("demo", help="Demo data for trying the API.")
COMMANDS = (tasks_cli, demo_cli)


@tasks_cli.command("mark-overdue")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Pretend today is this date (YYYY-MM-DD).",
)
def mark_overdue(today) -> None:
    """Run the overdue sweep now and print how many tasks it marked."""
    day = today.date() if today else TaskSettings.of(current_app).today()
    marked = overdue.mark_overdue(db.session, day)
    commit(f"marked {marked} task(s) overdue (today is {day.isoformat()})")


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
    if not tasks.complete_task(db.session, task, TaskSettings.of(current_app).today()):
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
                db.session,
                username,
                password,
                role,
                f"{username}@example.com",
                hashing=PasswordHashing.of(current_app),
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
