"""The database plumbing shared by every feature: reads in autocommit, and pooled
connections that PostgreSQL has closed dropped at checkout, without a round trip.

Reads: a GET or HEAD under ``/api/`` only reads, so what it runs needs no transaction
(each statement sees the data committed when it starts, as under READ COMMITTED anyway):
no BEGIN, no closing ROLLBACK. The hot reads (the token check, listings, the detail, the
change stamp) go through :func:`reads`, one pooled connection per request in autocommit
with no ORM session set up; anything else such a request does through ``db.session``
runs in autocommit too (:class:`Session`), on a connection of its own.

Dead connections: the pool used to ``pre_ping`` (a ``SELECT 1`` before every checkout:
one round trip on every request) to survive a PostgreSQL restart. Instead, a checkout looks at the
connection's socket without blocking: an idle connection has nothing to read unless the
server spoke first, which it does only to end the session (a restart, ``-m fast`` or a
crash alike, or ``pg_terminate_backend``: a termination notice or end of file). Such a
connection is discarded and the pool hands out a fresh one (SQLAlchemy's
``DisconnectionError`` protocol), so a restart costs no client a failed request. A
connection that dies while checked out still fails its request (503, see web/errors).
"""

import select
from contextlib import suppress

from flask import g, has_request_context, request
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError

READ_METHODS = {"GET", "HEAD"}
READ_CONNECTION = "taskapp_read_connection"


def read_only_request() -> bool:
    return has_request_context() and request.method in READ_METHODS and _under_api()


def _under_api() -> bool:
    return request.path.startswith("/api/")


def autocommit(engine: Engine) -> Engine:
    """``engine`` in autocommit (made once per engine, sharing its pool)."""
    found = getattr(engine, "taskapp_autocommit", None)
    if found is None:
        found = engine.execution_options(isolation_level="AUTOCOMMIT")
        engine.taskapp_autocommit = found
    return found


def reads(db) -> Connection:
    """The connection to read with (``db``: flask-sqlalchemy's extension): in a read-only
    request, the request's own on the engine in autocommit (see the module's docstring),
    taken without setting up an ORM session and returned by :func:`close_reads` at its
    end; otherwise the session's, in its transaction."""
    if not read_only_request():
        return db.session.connection()
    conn = g.get(READ_CONNECTION)
    if conn is None:
        conn = autocommit(db.engine).connect()
        setattr(g, READ_CONNECTION, conn)
    return conn


def close_reads(_error=None) -> None:
    conn = g.pop(READ_CONNECTION, None)
    if conn is not None:
        with suppress(DBAPIError):  # it died meanwhile: the pool discards it
            conn.close()


class Session(FlaskSession):
    """``db.session``: in a read-only request, bound to the engine in autocommit."""

    def get_bind(self, *args, **kwargs):
        bind = super().get_bind(*args, **kwargs)
        return autocommit(bind) if read_only_request() and isinstance(bind, Engine) else bind


def drop_dead_connections(engine: Engine) -> None:
    """Install the checkout check on ``engine`` (PostgreSQL through psycopg only)."""
    if engine.dialect.name == "postgresql" and not event.contains(engine, "checkout", _check):
        event.listen(engine, "checkout", _check)


def _check(dbapi_connection, _record, _proxy) -> None:
    if dbapi_connection.closed or _server_spoke(dbapi_connection.fileno()):
        raise DisconnectionError("connection closed by the server")


def _server_spoke(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))
