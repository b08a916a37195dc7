"""``Idempotency-Key`` on POST: a retried creation replays the first answer.

Use it on a view with one line, right under the auth decorator::

    @blp.auth_required(scope="webhooks:write")
    @blp.idempotent()
    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookSecretSchema)
    def post(self, data): ...

The view stays as it is (it commits once). With the header, the decorator claims the
key first (:mod:`taskapp.idempotency`), then runs the view with its commit deferred:
inside the view ``db.session.commit()`` only flushes, so that the decorator can write
the answer the view produced into the key's row and commit both in one transaction.
A view that fails (400, 403, any exception) releases the claim and stores nothing.

The stored answer is encrypted at rest with ``WEBHOOK_SECRET_KEY`` (the key that
encrypts webhook secrets): the answer to ``POST /api/webhooks/`` carries the new
webhook's secret, which a database dump must not reveal.

Answers: the same key and the same request (method, path, JSON body) within 24 h:
the first answer again (status, body, ``Location``, ``ETag``) plus
``Idempotent-Replayed: true``, writing nothing; a different request with that key:
422; the first request still running: 409; a key outside 1..255 characters: 400.
"""

from contextlib import contextmanager
from datetime import timedelta
from functools import wraps

from cryptography.fernet import Fernet
from flask import abort, current_app, make_response, request

from taskapp import idempotency
from taskapp.extensions import db
from taskapp.models import utcnow
from taskapp.web.messages import (
    IDEMPOTENCY_IN_FLIGHT,
    IDEMPOTENCY_KEY_LENGTH,
    IDEMPOTENCY_KEY_REUSED,
    IDEMPOTENCY_LOST_CLAIM,
)
from taskapp.web.permissions import current_user

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
REPLAYED_HEADERS = ("Location", "ETag")
HEADER_DOC = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "description": (
        "Any string of 1 to 255 characters, unique per intended creation. Sent again with "
        "the same request within 24 hours, the first answer is replayed and nothing is "
        "written; with a different request, 422; while the first is still running, 409."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH},
}


def _sealer() -> Fernet:
    """Fernet (from ``cryptography``) under ``WEBHOOK_SECRET_KEY``, as webhook secrets."""
    return Fernet(current_app.config["WEBHOOK_SECRET_KEY"].encode())


def idempotent(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        if not 1 <= len(key) <= MAX_LENGTH:
            abort(400, IDEMPOTENCY_KEY_LENGTH)
        fingerprint = idempotency.fingerprint(request.method, request.path, request.get_data())
        timeout = timedelta(seconds=current_app.config["IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS"])
        db.session.commit()  # end the auth read: never hold two pooled connections at once
        held = idempotency.claim(db.engine, current_user.id, key, fingerprint, utcnow(), timeout)
        if isinstance(held, idempotency.Stored):
            return _answer_from(held, fingerprint)
        return _run_once(held, view, args, kwargs)

    return wrapper


def _answer_from(stored: idempotency.Stored, fingerprint: str):
    if stored.fingerprint != fingerprint:
        abort(422, IDEMPOTENCY_KEY_REUSED)
    if stored.status_code is None:
        abort(409, IDEMPOTENCY_IN_FLIGHT)
    body = _sealer().decrypt(stored.body.encode()).decode()
    response = current_app.response_class(
        body, status=stored.status_code, mimetype="application/json"
    )
    response.headers.update(stored.headers or {})
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _run_once(held: idempotency.Claim, view, args, kwargs):
    session = db.session()
    try:
        with _commit_deferred(session) as commit:
            response = make_response(view(*args, **kwargs))
            if not 200 <= response.status_code < 300:
                raise _Failed(response)
            headers = {h: response.headers[h] for h in REPLAYED_HEADERS if h in response.headers}
            body = _sealer().encrypt(response.get_data()).decode()
            if not idempotency.complete(session, held, response.status_code, headers, body):
                session.rollback()
                abort(409, IDEMPOTENCY_LOST_CLAIM)
            commit()
            return response
    except _Failed as failed:
        session.rollback()
        idempotency.release(db.engine, held)
        return failed.response
    except BaseException:
        session.rollback()
        idempotency.release(db.engine, held)
        raise


class _Failed(Exception):
    def __init__(self, response):
        super().__init__(response.status_code)
        self.response = response


@contextmanager
def _commit_deferred(session):
    """While the view runs, its ``session.commit()`` is a flush; yields the real
    commit. (The session is this request's own, so no other request is affected.)"""
    real_commit = session.commit
    session.commit = session.flush
    try:
        yield real_commit
    finally:
        del session.commit
