"""Behaviour when a backing service is down: Redis unreachable must not stop logins,
CRUD or revocation; the database unreachable gives 503 in the contract's shape.
(``python -m reliability.faults`` stops and restarts real servers under a running gunicorn.)"""

import logging

import sqlalchemy as sa
from helpers import PASSWORD, create_user, login, only_postgresql

from taskapp.extensions import db, limiter

DEAD_REDIS = "redis://127.0.0.1:1/0"


def test_redis_rate_limit_storage_counts_failures(make_app, redis_url):
    app = make_app(RATELIMIT_STORAGE_URI=redis_url)
    client = app.test_client()
    create_user(app, "limited")
    for _ in range(5):
        bad = client.post("/api/auth/login/", json={"username": "limited", "password": "x"})
        assert bad.status_code == 401
    blocked = client.post("/api/auth/login/", json={"username": "limited", "password": "x"})
    assert blocked.status_code == 429


def test_with_redis_down_logins_crud_and_revocation_still_work(make_app, caplog):
    app = make_app(
        RATELIMIT_STORAGE_URI=DEAD_REDIS,
        CELERY={"broker_url": DEAD_REDIS, "task_ignore_result": True},
    )
    client = app.test_client()
    create_user(app, "worker")
    limiter._storage_dead = False  # the limiter is process-global; start from "alive"
    with caplog.at_level(logging.WARNING, logger="flask-limiter"):
        tokens = login(client, "worker", PASSWORD)
    warnings = [r.getMessage() for r in caplog.records if r.name == "flask-limiter"]
    assert any("falling back to in-memory" in message for message in warnings), warnings
    headers = {"Authorization": f"Bearer {tokens['access']}"}
    created = client.post("/api/tasks/", json={"title": "still works"}, headers=headers)
    assert created.status_code == 201
    url = f"/api/tasks/{created.get_json()['id']}/"
    assert client.patch(url, json={"status": "COMPLETED"}, headers=headers).status_code == 200
    assert client.delete(url, headers=headers).status_code == 204
    logout = client.post("/api/auth/logout/", json={"refresh": tokens["refresh"]}, headers=headers)
    assert logout.status_code == 204
    assert client.get("/api/auth/me/", headers=headers).status_code == 401


def test_healthz_reports_broker_down_but_stays_up(make_app):
    app = make_app(CELERY={"broker_url": DEAD_REDIS, "task_ignore_result": True})
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "broker": "unreachable"}


@only_postgresql
def test_connection_lost_after_the_answer_was_built_keeps_the_answer(make_app):
    """A GET leaves its read transaction open until teardown. If the connection dies in
    between, the failed ROLLBACK must not turn the finished answer into an empty 500."""
    app = make_app()
    killer = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    armed = {"kill": False}

    @app.after_request
    def kill_own_connection(response):
        if armed["kill"]:
            pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with killer.begin() as conn:
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return response

    client = app.test_client()
    create_user(app, "reader")
    headers = {"Authorization": f"Bearer {login(client, 'reader')['access']}"}
    armed["kill"] = True
    try:
        response = client.get("/api/tasks/", headers=headers)
    finally:
        armed["kill"] = False
        killer.dispose()
    assert response.status_code == 200
    assert response.get_json()["count"] == 0
    assert client.get("/api/tasks/", headers=headers).status_code == 200
