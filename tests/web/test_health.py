"""/livez (the process answers, touching nothing), /readyz (database, schema at the
migrations' head, broker; 503 naming what failed), /healthz as it was."""

import pytest

UNREACHABLE_DB = "postgresql+psycopg://postgres@127.0.0.1:9/nothing?connect_timeout=1"
UNREACHABLE_BROKER = "redis://127.0.0.1:9/0"


@pytest.fixture
def ready_app(make_app, redis_url):
    return make_app(CELERY={"broker_url": redis_url, "task_ignore_result": True})


def test_livez_answers_and_touches_nothing(client, count_queries):
    with count_queries() as statements:
        response = client.get("/livez")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert statements == []


def test_livez_answers_while_the_database_and_broker_are_down(make_app):
    app = make_app(
        SQLALCHEMY_DATABASE_URI=UNREACHABLE_DB, CELERY={"broker_url": UNREACHABLE_BROKER}
    )
    client = app.test_client()
    assert client.get("/livez").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.get_json()
    assert body["database"] == "unreachable" and body["broker"] == "unreachable"
    assert body["schema"] == "unknown"
    assert body["detail"] == "Not ready: database unreachable, schema unknown, broker unreachable."
    assert ready.headers["Retry-After"] == "5"
    assert client.get("/healthz").status_code == 503


def test_readyz_is_200_when_everything_answers(ready_app):
    response = ready_app.test_client().get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "status": "ok",
        "database": "ok",
        "schema": "ok",
        "broker": "ok",
    }


def test_readyz_names_a_broker_that_does_not_answer(make_app):
    app = make_app(CELERY={"broker_url": UNREACHABLE_BROKER})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert (body["database"], body["schema"], body["broker"]) == ("ok", "ok", "unreachable")
    assert body["detail"] == "Not ready: broker unreachable."


def test_readyz_names_a_schema_behind_the_migrations(ready_app):
    runner = ready_app.test_cli_runner()
    client = ready_app.test_client()
    assert runner.invoke(args=["db", "downgrade", "0007"]).exit_code == 0
    behind = client.get("/readyz")
    assert behind.status_code == 503
    assert behind.get_json()["schema"] == "behind"
    assert "schema behind" in behind.get_json()["detail"]
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert client.get("/readyz").status_code == 200


def test_healthz_is_unchanged(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert set(response.get_json()) == {"status", "database", "broker"}
