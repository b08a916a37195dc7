"""Answers for failures that are not HTTP errors raised on purpose.

HTTP errors (abort, werkzeug's 404/405/413...) are shaped by ``web.api.Api``. Here: the
services' domain errors, the database being unreachable (503), a lost
optimistic-concurrency race, and anything unexpected (500), always as JSON and never
with a trace.
"""

import logging
import math
import time

from flask import Flask, request
from flask_limiter.errors import RateLimitExceeded
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from taskapp import errors
from taskapp.extensions import db, limiter
from taskapp.web.api import flatten_messages
from taskapp.web.messages import DETAILS, TASK_CHANGED_MEANWHILE, THROTTLED

log = logging.getLogger(__name__)
DOMAIN_STATUS = {
    errors.NotFound: 404,
    errors.PermissionDenied: 403,
    errors.Conflict: 409,
}


def register(app: Flask) -> None:
    app.teardown_request(_end_session)
    app.register_error_handler(errors.DomainError, _domain_error)
    app.register_error_handler(RateLimitExceeded, _throttled)
    app.register_error_handler(StaleDataError, _stale_data)
    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_error_handler(InterfaceError, _database_unavailable)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(Exception, _unexpected)


def rollback_quietly() -> None:
    """Roll back after a failure; the connection may be gone, which changes nothing."""
    try:
        db.session.rollback()
    except DBAPIError:
        log.debug("rollback after failure failed", exc_info=True)


def _end_session(_error) -> None:
    """Close the request's session before flask-sqlalchemy's own teardown would. A read
    that never committed still has a transaction open; if the connection died after the
    answer was built, the ROLLBACK fails outside every error handler and the client
    would get an empty 500 instead of the answer it was about to receive."""
    try:
        db.session.remove()
    except DBAPIError:
        log.warning("database connection lost while closing the session")
        db.session.registry.clear()


def _domain_error(error: errors.DomainError):
    """A service refused: nothing it did may be committed."""
    rollback_quietly()
    if isinstance(error, errors.InvalidField):
        return flatten_messages({"json": {error.field: [error.message]}}), 400
    status = next((DOMAIN_STATUS[cls] for cls in type(error).__mro__ if cls in DOMAIN_STATUS), 400)
    return {"detail": error.message}, status


def _throttled(_error: RateLimitExceeded):
    """DRF's throttled answer; flask-limiter adds the Retry-After header."""
    window = limiter.current_limit
    wait = max(1, math.ceil(window.reset_at - time.time())) if window else 60
    return {"detail": THROTTLED.format(wait=wait)}, 429


def _stale_data(_error):
    """Another writer changed the row between our read and our conditional UPDATE."""
    rollback_quietly()
    if "If-Match" in request.headers:
        return {"detail": DETAILS[412]}, 412
    return {"detail": TASK_CHANGED_MEANWHILE}, 409


def _database_unavailable(error):
    log.warning("database unavailable: %s", str(error.orig or error).strip().splitlines()[0])
    rollback_quietly()
    return {"detail": DETAILS[503]}, 503, {"Retry-After": "5"}


def _database_error(error: DBAPIError):
    if error.connection_invalidated:
        return _database_unavailable(error)
    return _unexpected(error)


def _unexpected(error):
    log.exception("unhandled error", exc_info=error)
    rollback_quietly()
    return {"detail": DETAILS[500]}, 500
