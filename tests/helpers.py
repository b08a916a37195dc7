"""Helpers the tests share: users, logins, hand-made tokens, backend markers.
Fixtures live in conftest.py; test modules import these from here."""

import json
import os
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt as pyjwt
import pytest
from werkzeug.serving import make_server

from taskapp.extensions import db
from taskapp.models import Role
from taskapp.users import service as users
from taskapp.users.passwords import PasswordHashing

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/test")
"""Where the PostgreSQL test database is dropped and created (scripts/test prints it)."""
ROOT = Path(__file__).resolve().parent.parent
"""The repository (tests run from folders at any depth under tests/)."""
PASSWORD = "correct horse battery"
JWT_SECRET = "test-secret-key-that-is-long-enough-for-hs256"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

only_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
"""For behaviour that exists only on PostgreSQL (row locks, concurrent transactions)."""


class Person:
    """A user as the tests see them: id, name, and ready-made auth headers."""

    def __init__(self, client, user_id: int, username: str, role: Role):
        self.client = client
        self.id = user_id
        self.username = username
        self.role = role
        self.tokens = login(client, username)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.tokens['access']}"}


INVALID_TOKEN = {"detail": "Given token not valid for any token type", "code": "token_not_valid"}
"""SimpleJWT's answer to a bad or dead bearer token (``code`` included)."""


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def assert_unauthorized(response, body=INVALID_TOKEN):
    assert response.status_code == 401
    assert response.get_json() == body
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def forge_token(user_id: int, secret=JWT_SECRET, algorithm="HS256", **overrides) -> str:
    """An access token built by hand, to test what the API makes of odd ones."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": "ADMIN",
        "ver": 1,
        "type": "access",
        "jti": "0123456789abcdef",
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "fresh": False,
        **overrides,
    }
    return pyjwt.encode(claims, secret, algorithm=algorithm)


def login(client, username: str, password: str = PASSWORD) -> dict:
    response = client.post("/api/auth/login/", json={"username": username, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def create_user(app, username: str, role: Role = Role.INTERN, password: str = PASSWORD) -> int:
    with app.app_context():
        user = users.create_user(
            db.session,
            username,
            password,
            role,
            f"{username}@example.com",
            hashing=PasswordHashing.of(app),
        )
        db.session.commit()
        return user.id


@contextmanager
def serve(app):
    """Serve ``app`` over real HTTP on 127.0.0.1 and a free port (port 0) in a thread,
    for clients that are not Flask's test client (a browser, a generated client).
    Yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def json_column(value):
    """A JSON column as read back through SQL: PostgreSQL gives the object, SQLite its text."""
    return value if isinstance(value, dict) else json.loads(value)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    """Poll until ``predicate()`` is truthy or the deadline passes; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def _verb(method: str):
    def send(self, url: str, headers: dict | None = None, **kwargs):
        return getattr(self.client, method)(
            url, headers={**self.headers, **(headers or {})}, **kwargs
        )

    send.__name__ = method
    return send


class Api:
    """A small client over Flask's test client, as the tests call the API: URLs built in
    one place (``api.task(7)``) and a caller's credentials added once
    (``api.as_(intern).patch(api.task(7), json=...)``; ``api.as_(bearer(token))`` for a
    headers dict). Extra ``headers=`` are merged over the caller's."""

    TASKS = "/api/tasks/"

    def __init__(self, client, headers: dict | None = None):
        self.client = client
        self.headers = headers or {}

    def as_(self, who) -> "Api":
        """``who``: a :class:`Person` (their JWT) or the headers to send."""
        return Api(self.client, who.headers if isinstance(who, Person) else who)

    @staticmethod
    def task(task_id) -> str:
        return f"/api/tasks/{task_id}/"

    @staticmethod
    def webhook(webhook_id, *rest: str) -> str:
        return "/".join([f"/api/webhooks/{webhook_id}", *rest, ""])

    @staticmethod
    def user(user_id) -> str:
        return f"/api/users/{user_id}/"

    get, post, put, patch, delete = map(_verb, ("get", "post", "put", "patch", "delete"))
    head, options = _verb("head"), _verb("options")
