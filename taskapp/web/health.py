"""Health endpoints (operations, outside the API's OpenAPI document, no auth):

- ``GET /healthz``: is the database reachable, is the broker reachable (unchanged, for
  existing clients);
- ``GET /livez``: the process answers; touches nothing (no database, no broker), so a
  database outage never gets healthy API processes restarted;
- ``GET /readyz``: 200 only when the database answers, its schema is at the migrations'
  head and the broker answers; else 503 naming what failed. A load balancer sends
  traffic only to ready instances.
"""

from pathlib import Path

from alembic.script import ScriptDirectory
from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from taskapp.extensions import db
from taskapp.web.failures import rollback_quietly

blp = Blueprint("health", __name__)
HEADS_KEY = "taskapp.migration_heads"


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except DBAPIError:
        rollback_quietly()
        return False


def _broker_ok() -> bool:
    celery = current_app.extensions["celery"]
    try:
        with celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0, timeout=1)
        return True
    except Exception:
        return False


@blp.get("/healthz")
def healthz():
    database = _database_ok()
    body = {
        "status": "ok" if database else "unavailable",
        "database": "ok" if database else "unreachable",
        "broker": "ok" if _broker_ok() else "unreachable",
    }
    return body, 200 if database else 503


@blp.get("/livez")
def livez():
    return {"status": "ok"}


@blp.get("/readyz")
def readyz():
    database = _database_ok()
    checks = {
        "database": "ok" if database else "unreachable",
        "schema": _schema_state() if database else "unknown",
        "broker": "ok" if _broker_ok() else "unreachable",
    }
    failed = [f"{name} {state}" for name, state in checks.items() if state != "ok"]
    if not failed:
        return {"status": "ok", **checks}
    body = {"detail": "Not ready: " + ", ".join(failed) + ".", "status": "unavailable", **checks}
    return body, 503, {"Retry-After": "5"}


def _schema_state() -> str:
    """``ok`` when the database's Alembic revisions are the migrations' heads, else
    ``behind`` (``flask db upgrade`` has not run) or ``unversioned`` (never migrated)."""
    try:
        stored = set(db.session.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except DBAPIError:
        rollback_quietly()
        return "unversioned"
    return "ok" if stored == _heads() else "behind"


def _heads() -> set[str]:
    heads = current_app.extensions.get(HEADS_KEY)
    if heads is None:
        migrations = Path(current_app.extensions["migrate"].directory)
        heads = set(ScriptDirectory(str(migrations)).get_heads())
        current_app.extensions[HEADS_KEY] = heads
    return heads
