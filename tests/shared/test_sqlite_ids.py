"""An id is never handed out twice, on SQLite too (AUTOINCREMENT, migration 0008), and a
database made before that migration keeps its rows, indexes and triggers."""

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from helpers import create_user, login

from taskapp.extensions import db
from taskapp.models import Base, Role


def _before_autoincrement() -> str:
    """The revision just before the AUTOINCREMENT migration (found by its file name, so
    the test holds whatever revision ids the migrations are given when merged)."""
    scripts = ScriptDirectory(str(Path(__file__).resolve().parents[2] / "migrations"))
    migration = next(
        script
        for script in scripts.walk_revisions()
        if script.path.endswith("sqlite_autoincrement.py")
    )
    return migration.down_revision


def _log_of(client, person, task_id: int) -> list[dict]:
    answer = client.get(f"/api/activity-logs/?task={task_id}&page_size=100", headers=person.headers)
    return answer.get_json()["results"]


def test_a_deleted_tasks_id_is_never_given_to_a_new_task(client, intern, make_task):
    make_task(intern, title="First")
    doomed = make_task(intern, title="Doomed")
    old_etag = client.get(f"/api/tasks/{doomed['id']}/", headers=intern.headers).headers["ETag"]
    assert client.delete(f"/api/tasks/{doomed['id']}/", headers=intern.headers).status_code == 204

    newcomer = make_task(intern, title="Newcomer")

    assert newcomer["id"] > doomed["id"]
    assert client.get(f"/api/tasks/{doomed['id']}/", headers=intern.headers).status_code == 404
    fresh = client.get(f"/api/tasks/{newcomer['id']}/", headers=intern.headers)
    assert fresh.headers["ETag"] != old_etag
    assert [entry["action"] for entry in _log_of(client, intern, newcomer["id"])] == ["CREATED"]
    assert {entry["task_title"] for entry in _log_of(client, intern, doomed["id"])} == {"Doomed"}


def test_deleted_webhook_and_token_ids_are_not_reused(client, intern):
    def create_delete_create(path: str, body: dict) -> tuple[int, int]:
        first = client.post(path, json=body, headers=intern.headers)
        assert first.status_code == 201, first.get_json()
        gone = first.get_json()["id"]
        assert client.delete(f"{path}{gone}/", headers=intern.headers).status_code == 204
        second = client.post(path, json=body, headers=intern.headers)
        assert second.status_code == 201, second.get_json()
        return gone, second.get_json()["id"]

    for path, body in (
        ("/api/webhooks/", {"url": "https://hooks.example.com/in"}),
        ("/api/auth/tokens/", {"name": "script", "scopes": ["tasks:read"]}),
    ):
        gone, new = create_delete_create(path, body)
        assert new > gone, path


def _schema(app) -> dict[str, str]:
    """Every index and trigger, by name, with its SQL."""
    with app.app_context():
        rows = db.session.execute(
            sa.text(
                "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
                "AND sql IS NOT NULL"
            )
        ).all()
    return dict(rows)


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_a_database_from_the_previous_head_keeps_its_rows_and_stops_reusing_ids(
    backend, make_app, tmp_path
):
    if backend != "sqlite":
        pytest.skip("PostgreSQL sequences never reused an id; its migration is a no-op")
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'old.sqlite'}")
    runner, client = app.test_cli_runner(), app.test_client()
    assert runner.invoke(args=["db", "upgrade", _before_autoincrement()]).exit_code == 0
    create_user(app, "boss", Role.ADMIN)
    headers = {"Authorization": f"Bearer {login(client, 'boss')['access']}"}
    ids = [
        client.post("/api/tasks/", json={"title": f"t{n}"}, headers=headers).get_json()["id"]
        for n in range(3)
    ]
    assert client.delete(f"/api/tasks/{ids[-1]}/", headers=headers).status_code == 204
    before = client.get("/api/tasks/?ordering=id", headers=headers).get_json()["results"]
    log_before = client.get("/api/activity-logs/?ordering=id", headers=headers).get_json()

    result = runner.invoke(args=["db", "upgrade"])

    assert result.exit_code == 0, result.output
    # The rows, the log and the statistics kept by triggers are all still there.
    assert client.get("/api/tasks/?ordering=id", headers=headers).get_json()["results"] == before
    assert client.get("/api/activity-logs/?ordering=id", headers=headers).get_json() == log_before
    assert client.get("/api/tasks/stats/", headers=headers).get_json()["total"] == 2
    # The deleted task's id (the highest so far) stays retired.
    newcomer = client.post("/api/tasks/", json={"title": "new"}, headers=headers).get_json()
    assert newcomer["id"] > ids[-1]
    assert client.get("/api/tasks/stats/", headers=headers).get_json()["total"] == 3
    # Same indexes and triggers as a database built at the head from scratch.
    fresh = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    assert fresh.test_cli_runner().invoke(args=["db", "upgrade"]).exit_code == 0
    assert _schema(app) == _schema(fresh)
    # The log is still append-only.
    with app.app_context(), pytest.raises(sa.exc.IntegrityError, match="append-only"):
        db.session.execute(sa.text("DELETE FROM activity_log"))
    # The models and the upgraded database agree.
    assert runner.invoke(args=["db", "check"]).exit_code == 0


def test_every_table_with_an_integer_id_autoincrements(app, backend):
    """A table added later joins the rule: its model declares ``SQLITE_AUTOINCREMENT``
    and its migration creates it so on SQLite."""
    tables = [
        table
        for table in Base.metadata.sorted_tables
        if [column.name for column in table.primary_key] == ["id"]
        and isinstance(table.c.id.type, sa.Integer)
    ]
    assert {"task", "user_account", "activity_log", "webhook"} <= {t.name for t in tables}
    for table in tables:
        assert table.dialect_options["sqlite"]["autoincrement"], table.name
    if backend == "sqlite":
        with app.app_context():
            created = dict(db.session.execute(sa.text("SELECT name, sql FROM sqlite_master")).all())
        for table in tables:
            assert "AUTOINCREMENT" in created[table.name], table.name
