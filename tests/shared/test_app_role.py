"""The PostgreSQL role the app and the worker connect as in production (created by
`flask db grant-app-role`): the API works as that role, and the role cannot change or
empty the activity log."""

import pytest
import sqlalchemy as sa
from helpers import PASSWORD, Person, create_user, only_postgresql

from taskapp.models import Role

ROLE_PASSWORD = "app-role-password"


@pytest.fixture
def role_url(database_url, runner):
    role = sa.make_url(database_url).database + "_app"  # one per test database
    for _ in range(2):  # idempotent: the migrate step runs it on every deploy
        result = runner.invoke(args=["db", "grant-app-role", role, "--password", ROLE_PASSWORD])
        assert result.exit_code == 0, result.output
    yield database_url.replace("://postgres@", f"://{role}:{ROLE_PASSWORD}@")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
        conn.execute(sa.text(f'DROP ROLE "{role}"'))
    engine.dispose()


@only_postgresql
def test_the_api_works_as_the_app_role(make_app, role_url):
    app = make_app(SQLALCHEMY_DATABASE_URI=role_url)
    client = app.test_client()
    boss = Person(client, create_user(app, "boss", Role.ADMIN), "boss", Role.ADMIN)
    create_user(app, "worker")
    made = client.post(
        "/api/tasks/",
        json={"title": "t", "assigned_to": 2, "due_date": "2000-01-01"},
        headers=boss.headers,
    )
    assert made.status_code == 201, made.get_json()
    url = f"/api/tasks/{made.get_json()['id']}/"
    assert client.patch(url, json={"priority": "HIGH"}, headers=boss.headers).status_code == 200
    assert client.get("/api/tasks/?status=PENDING", headers=boss.headers).status_code == 200
    assert client.get("/api/tasks/stats/", headers=boss.headers).status_code == 200
    swept = app.test_cli_runner().invoke(args=["tasks", "mark-overdue"])
    assert swept.exit_code == 0 and "marked 1 task(s)" in swept.output
    assert client.delete(url, headers=boss.headers).status_code == 204
    logs = client.get("/api/activity-logs/", headers=boss.headers).get_json()
    assert logs["count"] == 4
    user = client.post(
        "/api/users/", json={"username": "new", "password": PASSWORD}, headers=boss.headers
    )
    assert user.status_code == 201
    refreshed = client.post("/api/auth/refresh/", json={"refresh": boss.tokens["refresh"]})
    pair = refreshed.get_json()
    logout = client.post(
        "/api/auth/logout/",
        json={"refresh": pair["refresh"]},
        headers={"Authorization": f"Bearer {pair['access']}"},
    )
    assert logout.status_code == 204
    assert client.get("/healthz").status_code == 200


@only_postgresql
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE activity_log SET task_title = 'forged'",
        "DELETE FROM activity_log",
        "TRUNCATE activity_log",
        "ALTER TABLE activity_log DISABLE TRIGGER activity_log_append_only",
        "DROP TABLE task_counter",
    ],
)
def test_the_app_role_cannot_rewrite_the_log(admin, make_task, role_url, sql, statement):
    make_task(admin)
    engine = sa.create_engine(role_url)
    try:
        refused = pytest.raises(sa.exc.ProgrammingError, match=r"permission denied|must be owner")
        with refused, engine.begin() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()
    assert sql("SELECT task_title FROM activity_log") == [("A task",)]


def test_grant_app_role_refuses_sqlite_politely(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI="sqlite://")
    result = app.test_cli_runner().invoke(args=["db", "grant-app-role", "x", "--password", "y"])
    assert result.exit_code == 1 and "only on PostgreSQL" in result.output
