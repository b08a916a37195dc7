"""A PostgreSQL connection closed by the server while it sat in the pool (a restart,
``pg_terminate_backend``) costs no request: it is dropped at checkout, without the
pre-ping's round trip on every request (issue 19)."""

import psycopg
import pytest
from helpers import PG_ADMIN_URL, wait_for

from taskapp.extensions import db


@pytest.fixture
def pg_only(backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL closes connections; SQLite has none to close")


def _terminate_pooled_connections(app) -> int:
    """End every session the app's pool holds, as a restart would; how many."""
    with app.app_context():
        database = db.engine.url.database
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        others = "WHERE datname = %s AND pid <> pg_backend_pid()"
        ended = admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity {others}", [database]
        ).fetchall()
        gone = f"SELECT count(*) = 0 FROM pg_stat_activity {others}"  # the backends exited
        wait_for(lambda: admin.execute(gone, [database]).fetchone()[0], timeout=10)
    return len(ended)


def test_requests_after_the_server_closed_pooled_connections_succeed(
    pg_only, app, client, intern, make_task
):
    task = make_task(intern)
    assert client.get("/api/tasks/", headers=intern.headers).status_code == 200
    assert _terminate_pooled_connections(app) >= 1
    for url in ("/api/tasks/", f"/api/tasks/{task['id']}/", "/api/auth/me/"):
        response = client.get(url, headers=intern.headers)
        assert response.status_code == 200, response.get_json()
    created = client.post("/api/tasks/", json={"title": "after"}, headers=intern.headers)
    assert created.status_code == 201
    assert _terminate_pooled_connections(app) >= 1
    assert client.get("/healthz").status_code == 200


def test_no_pre_ping(pg_only, app):
    """The pool checks out without a SELECT 1 round trip."""
    with app.app_context():
        assert db.engine.pool._pre_ping is False
