"""flask CLI: ``flask users ...``, ``flask tasks mark-overdue|complete|remind``,
``flask demo seed``, ``flask webhooks list|deliveries|redeliver``."""

from datetime import date, timedelta

import click
import marshmallow as ma
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from flask_migrate.cli import db as flask_migrate_db
from psycopg import sql
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from taskapp import audit, outbox, overdue, personal_tokens
from taskapp.extensions import db
from taskapp.jobs import run_reminder_sweep
from taskapp.models import (
    PersonalAccessToken,
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
from taskapp.tasks import service as tasks
from taskapp.users import service
from taskapp.users.schemas import UserCreateSchema, UserUpdateSchema

NO_SCHEMA = "the database has no taskapp schema yet: run `flask db upgrade` first"
UNDEFINED_TABLE = "42P01"


class CheckedGroup(AppGroup):
    """Commands that say what is wrong instead of printing a traceback when the
    database has not been migrated."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DBAPIError as error:
            if _is_missing_table(error):
                raise click.ClickException(NO_SCHEMA) from None
            raise


def _is_missing_table(error: DBAPIError) -> bool:
    orig = error.orig
    return getattr(orig, "sqlstate", None) == UNDEFINED_TABLE or "no such table" in str(orig)


users_cli = CheckedGroup("users", help="Manage users.")
tasks_cli = CheckedGroup("tasks", help="Task maintenance.")
demo_cli = CheckedGroup("demo", help="Demo data for trying the API.")
webhooks_cli = CheckedGroup("webhooks", help="Inspect webhooks and redeliver messages.")
ROLE = click.Choice([role.value for role in Role], case_sensitive=False)


def register(app: Flask) -> None:
    for group in (users_cli, tasks_cli, demo_cli, webhooks_cli):
        app.cli.add_command(group)
    flask_migrate_db.add_command(grant_app_role)


def _user_or_fail(username: str) -> User:
    user = service.find_by_username(db.session, username)
    if user is None:
        raise click.ClickException(f"no user named {username!r}")
    return user


def _validated(schema: ma.Schema, data: dict) -> dict:
    """The API's own schema decides: same rules, same messages, exit status 1."""
    try:
        return schema.load(data)
    except ma.ValidationError as error:
        problems = "; ".join(
            f"{field}: {' '.join(messages)}"
            for field, messages in error.normalized_messages().items()
        )
        raise click.ClickException(f"invalid user: {problems}") from None


def _commit(message: str) -> None:
    db.session.commit()
    click.echo(message)


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=ROLE, default=Role.INTERN.value, show_default=True)
@click.option("--email", default="")
@click.password_option(help="Prompted (hidden, confirmed) when not given.")
def create_user(username: str, role: str, email: str, password: str) -> None:
    """Create a user (the same rules as POST /api/users/)."""
    data = {"username": username, "password": password, "role": role.upper()}
    if email:
        data["email"] = email
    fields = _validated(UserCreateSchema(), data)
    try:
        user = service.create_user(
            db.session,
            fields["username"],
            fields["password"],
            fields["role"],
            fields.get("email", ""),
        )
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
    service.update_user(user, _validated(UserUpdateSchema(), {"password": password}))
    _commit(f"password of {user.username} changed")


@users_cli.command("deactivate")
@click.argument("username")
def deactivate(username: str) -> None:
    """Deactivate a user (their tokens stop working; their tasks and logs stay)."""
    user = _user_or_fail(username)
    service.update_user(user, {"is_active": False})
    _commit(f"{user.username} deactivated")


@users_cli.command("tokens")
@click.argument("username")
def list_tokens(username: str) -> None:
    """List a user's personal access tokens (never their secrets)."""
    user = _user_or_fail(username)
    query = personal_tokens.live_tokens().where(PersonalAccessToken.user_id == user.id)
    for token in db.session.execute(query).scalars():
        click.echo(
            "\t".join(
                [
                    str(token.id),
                    token.name,
                    ",".join(token.scope_list),
                    f"created {_when(token.created_at)}",
                    f"expires {_when(token.expires_at)}",
                    f"last used {_when(token.last_used_at)}",
                ]
            )
        )


@users_cli.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token(token_id: int) -> None:
    """Revoke a personal access token by id (it stops working at once)."""
    token = db.session.get(PersonalAccessToken, token_id)
    if token is None:
        raise click.ClickException(f"no personal access token with id {token_id}")
    personal_tokens.revoke(db.session, token, actor_id=None, source=Source.CLI)
    _commit(f"revoked token {token_id} ({token.name}) of user id {token.user_id}")


def _when(moment) -> str:
    """A token's time, ``never`` if none (no expiry, never used)."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else "never"


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


APPEND_ONLY_TABLES = ("activity_log",)


def _refuse_powerful(raw, role: str) -> None:
    """A role that pre-existed with powers (superuser, bypassing row security, creating
    roles or databases) would make the grants meaningless: roll back and say so."""
    powers = raw.execute(
        "SELECT rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb FROM pg_roles "
        "WHERE rolname = %s",
        (role,),
    ).fetchone()[0]
    if powers:
        raise click.ClickException(
            f"role {role} is a superuser or may create roles or databases; use another name"
        )


def _rights(table: str) -> str:
    if table == "alembic_version":
        return "SELECT"
    if table in APPEND_ONLY_TABLES:
        return "SELECT, INSERT"
    return "SELECT, INSERT, UPDATE, DELETE"


@click.command("grant-app-role")
@click.argument("role")
@click.option(
    "--password",
    envvar="TASKAPP_APP_DB_PASSWORD",
    required=True,
    help="The role's password (default: $TASKAPP_APP_DB_PASSWORD).",
)
@with_appcontext
def grant_app_role(role: str, password: str) -> None:
    """Create or update the PostgreSQL role the app and the worker connect as.

    Run as the owner of the schema, after `flask db upgrade` (again after each one: it
    grants on every table there is). The role owns nothing, so it cannot alter tables,
    disable the log's triggers or TRUNCATE; it may read and write every table except
    activity_log, which it may only read and append to."""
    if db.engine.dialect.name != "postgresql":
        raise click.ClickException("roles exist only on PostgreSQL")
    tables = [*sorted(db.metadata.tables), "alembic_version"]
    name = sql.Identifier(role)
    statements = [
        sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {}) THEN "
            "CREATE ROLE {} LOGIN; END IF; END $$"
        ).format(sql.Literal(role), name),
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(name, sql.Literal(password)),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(db.engine.url.database), name
        ),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(name),
        sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(name),
    ]
    for table in tables:
        grant = sql.SQL(f"GRANT {_rights(table)} ON {{}} TO {{}}")
        statements.append(grant.format(sql.Identifier(table), name))
    try:
        with db.engine.begin() as conn:
            raw = conn.connection.driver_connection
            for statement in statements:
                raw.execute(statement)
            _refuse_powerful(raw, role)
    except DBAPIError as error:
        raise click.ClickException(f"could not set up role {role}: {error.orig}") from None
    click.echo(f"role {role}: may read and write the tables, and only append to activity_log")


def _stamp(moment) -> str:
    """A delivery's time (``-`` if none); not ``_when``, which the token listing uses."""
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
            f"last={d.last_status_code or d.last_error or '-'}\t{_stamp(d.created_at)}"
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
