"""Helpers the tests share: users, logins, hand-made tokens, backend markers.
Fixtures live in conftest.py; test modules import these from here."""

import os
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import jwt as pyjwt
import pytest
from werkzeug.serving import make_server

from taskapp.extensions import db
from taskapp.models import Role
from taskapp.users import service as users
from taskapp.users.passwords import PasswordHashing

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


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05):
    """Poll until ``predicate()`` is truthy or the deadline passes; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()
