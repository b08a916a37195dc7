"""Pooled connections that PostgreSQL has closed are dropped at checkout, without a round
trip.

The pool used to ``pre_ping`` (a ``SELECT 1`` before every checkout: one round trip on
every request) to survive a PostgreSQL restart. Instead, a checkout looks at the
connection's socket without blocking: an idle connection has nothing to read unless the
server spoke first, which it does only to end the session (a restart, ``-m fast`` or a
crash alike, or ``pg_terminate_backend``: a termination notice or end of file). Such a
connection is discarded and the pool hands out a fresh one (SQLAlchemy's
``DisconnectionError`` protocol), so a restart costs no client a failed request. A
connection that dies while checked out still fails its request (503, see web/errors).
"""

import select

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError


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
