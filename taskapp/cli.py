"""flask CLI: ``flask users ...``, ``flask tasks mark-overdue``, ``flask demo seed``,
``flask webhooks list|deliveries|redeliver``."""

from datetime import date, timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

from taskapp import audit, outbox, overdue
from taskapp.extensions import db
from taskapp.models import (
    Priority,
    Role,
    Source,
    Status,
    Task,
    User,
    Webhook,
    WebhookDelivery,
    utcnow,
)
from taskapp.users import service

users_cli = AppGroup("users", help="Manage users.")
tasks_cli = AppGroup("tasks", help="Task maintenance.")
demo_cli = AppGroup("demo", help="Demo data for trying the API.")
webhooks_cli = AppGroup("webhooks", help="Inspect webhooks and redeliver messages.")
ROLE = click.Choice([role.value for role in Role], case_sensitive=False)


def register(app: Flask) -> None:
    for group in (users_cli, tasks_cli, demo_cli, webhooks_cli):
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


def _when(moment) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else "-"


@webhooks_cli.command("list")
def list_webhooks() -> None:
    """List every webhook: id, owner, state, events, URL."""
    query = select(Webhook, User.username).join(User, User.id == Webhook.owner_id)
    for hook, owner in db.session.execute(query.order_by(Webhook.id)):
        state = "active" if hook.is_active else f"disabled ({hook.disabled_reason})"
        click.echo(f"{hook.id}\t{owner}\t{state}\t{','.join(hook.events)}\t{hook.url}")


@webhooks_cli.command("deliveries")
@click.argument("webhook_id", type=int)
@click.option("--limit", default=20, show_default=True, help="How many, newest first.")
def list_deliveries(webhook_id: int, limit: int) -> None:
    """A webhook's recent deliveries, newest first."""
    if db.session.get(Webhook, webhook_id) is None:
        raise click.ClickException(f"no webhook with id {webhook_id}")
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
    )
    for d in db.session.execute(query).scalars():
        click.echo(
            f"{d.id}\t{d.msg_id}\t{d.event}\t{d.status.value}\tattempts={d.attempts}\t"
            f"last={d.last_status_code or d.last_error or '-'}\t{_when(d.created_at)}"
        )


@webhooks_cli.command("redeliver")
@click.argument("delivery_id", type=int)
def redeliver(delivery_id: int) -> None:
    """Send a delivery's message again, with its original webhook-id."""
    original = db.session.get(WebhookDelivery, delivery_id)
    if original is None:
        raise click.ClickException(f"no delivery with id {delivery_id}")
    again = outbox.redeliver(db.session, original, utcnow())
    _commit(f"queued delivery {again.id} ({again.msg_id}, {again.event})")
