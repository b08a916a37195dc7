"""The CLI plumbing, as ``web/`` is the HTTP plumbing: the command group that explains
a missing schema, the one way list commands print (column headers, ``--json``, an
empty list said in words), the API's schema deciding on input, and ``flask db
grant-app-role`` (the deployment's database role, shared by every feature). The
commands themselves live in each feature's ``cli.py`` (``users``, ``auth``, ``tasks``,
``webhooks``); :func:`register` adds every feature's groups from the one list."""

import json
from collections.abc import Callable, Iterable

import click
import marshmallow as ma
from flask import Flask
from flask.cli import AppGroup, with_appcontext
from flask_migrate.cli import db as flask_migrate_db
from psycopg import sql
from sqlalchemy.exc import DBAPIError

from taskapp.extensions import db
from taskapp.features import features

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


def register(app: Flask) -> None:
    for feature in features():
        if feature.cli:
            for group in feature.module("cli").COMMANDS:
                app.cli.add_command(group)
    flask_migrate_db.add_command(grant_app_role)


def json_option(command: Callable) -> Callable:
    """``--json``: print the list as one JSON array instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def print_rows(rows: Iterable[dict], as_json: bool, empty: str, blank: str = "-") -> None:
    """A list command's answer: a header line and one tab-separated line per row (the
    header names are the JSON keys, upper-cased; a missing value reads ``blank``),
    ``empty`` when there is none, or with ``--json`` the rows as a JSON array (``[]``
    when empty, ``null`` for a missing value)."""
    rows = list(rows)
    if as_json:
        click.echo(json.dumps(rows, default=str))
        return
    if not rows:
        click.echo(empty)
        return
    click.echo("\t".join(name.upper() for name in rows[0]))
    for row in rows:
        click.echo("\t".join(blank if value is None else str(value) for value in row.values()))


def when(moment) -> str | None:
    """A timestamp as the API writes it (UTC, ``Z``), or None."""
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z") if moment else None


def validated(schema: ma.Schema, data: dict, what: str = "user") -> dict:
    """The API's own schema decides: same rules, same messages, exit status 1."""
    try:
        return schema.load(data)
    except ma.ValidationError as error:
        problems = "; ".join(
            f"{field}: {' '.join(messages)}"
            for field, messages in error.normalized_messages().items()
        )
        raise click.ClickException(f"invalid {what}: {problems}") from None


def commit(message: str) -> None:
    db.session.commit()
    click.echo(message)


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
