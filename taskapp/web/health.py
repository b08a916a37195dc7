"""``GET /healthz``: is the database reachable, is the broker reachable."""

from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from taskapp.extensions import db
from taskapp.web.failures import rollback_quietly

blp = Blueprint("health", __name__)


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
